"""The settings' own e-mail addresses follow the same rule as the recipients'."""

from __future__ import annotations

import pytest

from recouvrement.config import load_settings
from recouvrement.errors import RecouvrementError


@pytest.mark.parametrize("section, key", [("creditor", "email"), ("smtp", "sender")])
def test_a_settings_address_that_is_not_one_bare_address_is_refused_naming_the_field(tmp_path, section, key):
    path = tmp_path / "recouvrement.toml"
    path.write_text(f'[{section}]\n{key} = "facturation@lilas.example, evil@attacker.example"\n', encoding="utf-8")
    with pytest.raises(RecouvrementError, match=rf"\[{section}\.{key}\]: pas une adresse e-mail valide"):
        load_settings(path)


def test_bare_addresses_in_the_settings_are_accepted(tmp_path):
    path = tmp_path / "recouvrement.toml"
    path.write_text('[creditor]\nemail = "facturation@lilas.example"\n[smtp]\nsender = "relances@lilas.example"\n',
                    encoding="utf-8")
    assert load_settings(path).smtp.sender == "relances@lilas.example"
