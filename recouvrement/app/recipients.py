"""Who receives a patient's letters now lives in `render.recipients` (a shared helper, not a use case); these
names stay here for the use cases that still import them from this module."""

from recouvrement.render.recipients import (debtor_of, has_guarantor, is_minor, line_of, patient_name,  # noqa: F401
                                            recipient_email, recipient_of, text_of)
