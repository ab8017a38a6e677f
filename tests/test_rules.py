"""Rules files: the shipped policy loads, and a bad file is refused naming the file and the key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from recouvrement.errors import RecouvrementError
from recouvrement.rules import DEFAULT_RULES_DIR, Rules, load_rules


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    """A copy of the shipped rules to spoil one line at a time."""
    target = tmp_path / "rules"
    shutil.copytree(DEFAULT_RULES_DIR, target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def refusal(rules_dir: Path) -> RecouvrementError:
    with pytest.raises(RecouvrementError) as caught:
        load_rules(rules_dir)
    return caught.value


def test_the_shipped_rules_are_the_documented_defaults():
    assert load_rules() == Rules()


def test_the_rules_are_frozen():
    with pytest.raises(AttributeError):
        load_rules().plans.max_months = 24


def test_a_copied_rules_folder_is_read_in_place_of_the_shipped_one(rules_dir):
    edit(rules_dir / "plans.toml", "max_months = 12", "max_months = 6")
    assert load_rules(rules_dir).plans.max_months == 6


def test_an_unknown_key_is_refused_naming_file_and_key(rules_dir):
    edit(rules_dir / "agency.toml", "allow_phone = false", "allow_phone = false\nallow_fax = true")
    error = refusal(rules_dir)
    assert error.file.endswith("agency.toml") and error.field == "allow_fax"


def test_an_unknown_key_inside_a_level_names_the_level(rules_dir):
    edit(rules_dir / "ladder.toml", 'template = "relance_2"', 'template = "relance_2"\ndelay = 3')
    assert refusal(rules_dir).field == "levels[1].delay"


def test_a_missing_key_is_refused(rules_dir):
    edit(rules_dir / "exclusions.toml", "min_total_cents = 500", "")
    error = refusal(rules_dir)
    assert error.field == "min_total_cents" and "manquante" in str(error)


def test_a_negative_number_is_refused(rules_dir):
    edit(rules_dir / "ladder.toml", "min_gap_days = 14", "min_gap_days = -1")
    assert refusal(rules_dir).field == "min_gap_days"


def test_true_is_not_a_number(rules_dir):
    edit(rules_dir / "plans.toml", "grace_days = 15", "grace_days = true")
    assert refusal(rules_dir).field == "grace_days"


def test_a_text_where_a_yes_or_no_is_expected_is_refused(rules_dir):
    edit(rules_dir / "agency.toml", "allow_email = false", 'allow_email = "no"')
    assert refusal(rules_dir).field == "allow_email"


def test_an_unknown_channel_is_refused(rules_dir):
    edit(rules_dir / "ladder.toml", 'channel = "both"', 'channel = "fax"')
    error = refusal(rules_dir)
    assert error.field == "levels[1].channel" and "letter, email, both" in str(error)


def test_the_mise_en_demeure_cannot_be_email_only(rules_dir):
    text = (rules_dir / "ladder.toml").read_text(encoding="utf-8")
    head, tail = text.rsplit('channel = "both"', 1)
    (rules_dir / "ladder.toml").write_text(head + 'channel = "email"' + tail, encoding="utf-8")
    assert refusal(rules_dir).field == "levels[2].channel"


def test_levels_must_come_later_one_after_the_other(rules_dir):
    edit(rules_dir / "ladder.toml", "level = 2\ndays = 30", "level = 2\ndays = 10")
    assert refusal(rules_dir).field == "levels[1].days"


def test_levels_must_be_numbered_in_order(rules_dir):
    edit(rules_dir / "ladder.toml", "level = 2", "level = 4")
    assert refusal(rules_dir).field == "levels[1].level"


def test_invalid_toml_is_refused_naming_the_line(rules_dir):
    edit(rules_dir / "segments.toml", "min_broken_plans = 1", "min_broken_plans = = 1")
    error = refusal(rules_dir)
    assert error.file.endswith("segments.toml") and error.line is not None
    assert str(error).startswith(f"{error.file}:{error.line}")


def test_a_missing_rules_file_is_refused_naming_it(rules_dir):
    (rules_dir / "plans.toml").unlink()
    assert refusal(rules_dir).file.endswith("plans.toml")


def test_the_mise_en_demeure_cannot_be_a_phone_call(rules_dir):
    text = (rules_dir / "ladder.toml").read_text(encoding="utf-8")
    head, tail = text.rsplit('channel = "both"', 1)
    (rules_dir / "ladder.toml").write_text(head + 'channel = "phone"\nscript = "appel"\ncall_within_days = 5' + tail,
                                           encoding="utf-8")
    error = refusal(rules_dir)
    assert error.field == "levels[2].channel" and "mise en demeure" in str(error) and "courrier" in str(error)


def test_a_phone_level_names_its_script_and_its_delay(rules_dir):
    edit(rules_dir / "ladder.toml", 'template = "relance_2"\nchannel = "both"',
         'template = "relance_2"\nchannel = "phone"\nscript = "appel"\ncall_within_days = 5')
    level = load_rules(rules_dir).ladder.level(2)
    assert (level.channel, level.script, level.call_within_days, level.template) == ("phone", "appel", 5, "relance_2")


def test_a_phone_level_without_its_script_is_refused(rules_dir):
    edit(rules_dir / "ladder.toml", 'template = "relance_2"\nchannel = "both"',
         'template = "relance_2"\nchannel = "phone"\ncall_within_days = 5')
    error = refusal(rules_dir)
    assert error.field == "levels[1].script" and "manquante" in str(error)


def test_a_script_on_a_letter_level_is_refused_in_french(rules_dir):
    edit(rules_dir / "ladder.toml", 'template = "relance_2"\nchannel = "both"',
         'template = "relance_2"\nchannel = "both"\nscript = "appel"')
    error = refusal(rules_dir)
    assert error.field == "levels[1].script" and "téléphone" in str(error)


def test_the_pre_due_notice_cannot_be_a_phone_call(rules_dir):
    edit(rules_dir / "ladder.toml", 'template = "avant_echeance"\nchannel = "email"',
         'template = "avant_echeance"\nchannel = "phone"')
    assert refusal(rules_dir).field == "pre_due.channel"


def test_the_pre_due_notice_is_at_most_sixty_days_before(rules_dir):
    edit(rules_dir / "ladder.toml", "days_before = 7", "days_before = 0")
    error = refusal(rules_dir)
    assert error.field == "pre_due.days_before" and "entre 1 et 60" in str(error)


def test_a_level_may_join_channels_with_a_plus_in_any_order(rules_dir):
    edit(rules_dir / "ladder.toml", 'channel = "email"\n\n[[levels]]\nlevel = 2', 'channel = "sms + email"\n\n[[levels]]\nlevel = 2')
    edit(rules_dir / "ladder.toml", 'level = 2\ndays = 30\ntemplate = "relance_2"\nchannel = "both"',
         'level = 2\ndays = 30\ntemplate = "relance_2"\nchannel = "sms+letter"')
    ladder = load_rules(rules_dir).ladder
    assert (ladder.level(1).channel, ladder.level(2).channel) == ("email+sms", "letter+sms")


def test_a_channel_named_twice_is_refused(rules_dir):
    edit(rules_dir / "ladder.toml", 'channel = "both"', 'channel = "sms+sms"')
    assert refusal(rules_dir).field == "levels[1].channel"


def test_the_mise_en_demeure_never_goes_by_sms_one_french_error(rules_dir):
    text = (rules_dir / "ladder.toml").read_text(encoding="utf-8")
    head, tail = text.rsplit('channel = "both"', 1)
    (rules_dir / "ladder.toml").write_text(head + 'channel = "letter+sms"' + tail, encoding="utf-8")
    error = refusal(rules_dir)
    assert error.field == "levels[2].channel" and "mise en demeure ne part jamais par SMS" in str(error)
