"""The pure core: functions on plain data, no I/O, no database, no clock."""
