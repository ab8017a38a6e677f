"""Letters rendered from the whitelist view: content, tone, privacy and the sandbox."""

from __future__ import annotations

import dataclasses
import itertools
import re
from dataclasses import replace
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from jinja2.exceptions import SecurityError, UndefinedError

from recouvrement.core.privacy import scan_text
from recouvrement.core.references import format_rf
from recouvrement.money import format_eur
from recouvrement.render.letters import date_fr, environment, html_to_text, render_html, render_text
from recouvrement.render.views import KINDS, LetterLine, LetterView, Recipient, specimen

VARIANTS = [dict(invoices=n, guarantor=g, offer_plan_first=o)
            for n, g, o in itertools.product((1, 3), (False, True), (False, True))]
ALLOWED_FEES_SENTENCE = "aucuns frais ni intérêts ne vous seront réclamés"


def all_views():
    return [specimen(kind, f"L-{kind}-{i}", **variant)
            for kind in KINDS for i, variant in enumerate(VARIANTS)]


def flat(text: str) -> str:
    """The text on one line (no-break spaces kept), so a phrase wrapped in the template still matches."""
    return re.sub(r"[ \n]+", " ", text)


def without_allowed_sentence(text: str) -> str:
    return flat(text).lower().replace(ALLOWED_FEES_SENTENCE, "")


@pytest.mark.parametrize("view", all_views(), ids=lambda v: v.letter_id)
def test_every_letter_of_every_kind_passes_the_privacy_scan(view):
    assert scan_text(render_text(view)) == []
    assert scan_text(render_html(view)) == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_letter_shows_what_to_pay_and_how(kind):
    view = specimen(kind, invoices=3)
    text = render_text(view)
    for line in view.lines:
        assert line.invoice_number in text
        assert date_fr(line.issue_date, short=True) in text
        # One reference per letter (issue #14): the invoices' own only where the letter has none (a plan).
        assert (format_rf(line.rf_reference) in text) == (view.payment_reference == "")
    assert f"Total restant dû | {format_eur(view.total_due_cents)}" in text
    assert f"déduits | − {format_eur(view.credits_cents)}" in text
    assert "IBAN FR76 3000 6000 0112 3456 7890 189, BIC AGRIFRPPXXX" in text


@pytest.mark.parametrize("kind", KINDS)
def test_a_letter_names_the_creditor_and_its_date(kind):
    text = render_text(specimen(kind))
    for part in ("Centre de santé des Lilas", "12 rue de Paris", "93260 Les Lilas", "01 43 62 00 00",
                 "facturation@cds-lilas.example", "SIRET 73282932000074", "le 23 novembre 2026",
                 "Référence du courrier : SPECIMEN-0001"):
        assert part in text


@pytest.mark.parametrize("kind", KINDS)
def test_a_letter_invites_a_call_offers_instalments_and_points_to_social_help(kind):
    text = flat(render_text(specimen(kind)))
    assert "Appelez-nous au 01 43 62 00 00" in text
    assert "plusieurs fois" in text
    # Issue #14: the Complémentaire santé solidaire and the caisse's social service, with how to ask (was: the CCAS).
    assert "la Complémentaire santé solidaire (gratuite, ou moins de 1 € par jour)" in text
    assert "demandez-la sur ameli.fr, au 36 46 ou à votre caisse d'Assurance Maladie" in text
    assert "dont le service social peut aussi vous accompagner (rendez-vous au 36 46)" in text


@pytest.mark.parametrize("kind", KINDS)
def test_a_letter_of_every_level_says_how_to_contest_and_that_reminders_stop_meanwhile(kind):
    text = flat(render_text(specimen(kind)))
    assert ("Si vous contestez ce montant, écrivez-nous ou appelez-nous : nos relances seront suspendues pendant "
            "l'examen de votre demande.") in text


@pytest.mark.parametrize("kind", KINDS)
def test_a_letter_claims_no_fees_and_no_interest(kind):
    text = without_allowed_sentence(render_text(specimen(kind, invoices=2, offer_plan_first=True)))
    assert "frais" not in text
    assert "intérêt" not in text
    assert "pénalit" not in text


@pytest.mark.parametrize("kind", KINDS)
def test_a_letter_says_nothing_about_care(kind):
    text = render_text(specimen(kind, guarantor=True)).lower()
    for word in ("soin", "consultation", "acte", "médecin", "traitement"):
        assert not re.search(rf"\b{word}", text), word


def test_the_instalment_offer_comes_before_the_payment_details_when_offered_first():
    text = render_text(specimen("relance_1", offer_plan_first=True))
    assert text.index("Vous pouvez régler en plusieurs fois.") < text.index("Comment régler")


def test_the_instalment_offer_comes_with_the_help_otherwise():
    text = render_text(specimen("relance_1", offer_plan_first=False))
    assert "Vous pouvez régler en plusieurs fois." not in text
    assert text.index("Comment régler") < text.index("paiement en plusieurs fois")


def test_a_first_reminder_asks_to_ignore_it_when_already_paid():
    assert "ne pas tenir compte de ce courrier" in render_text(specimen("relance_1"))


def test_a_rejection_notice_names_the_insurer_and_gives_one_deadline():
    # Issue #14: one deadline (was "dans un délai de 30 jours, soit au plus tard le …", and a due date per invoice).
    text = flat(render_text(specimen("avis_rejet", invoices=2)))
    assert "l'Assurance Maladie n'a pas réglé la part qui lui revenait sur vos factures n° F2026-000123" in text
    assert "au plus tard le 23 décembre 2026." in text
    assert "délai" not in text and "Échéance" not in text
    assert len(re.findall(r"\b\d{1,2} (?:novembre|décembre|janvier) 20\d\d|\d\d/\d\d/20\d\d", text)) == 4  # letter, 2 issue dates, the deadline
    dates = re.findall(r"au plus tard le ([^.]*)\.", text)
    assert dates == ["23 décembre 2026"]


def test_a_rejection_notice_gives_the_insurers_reason_in_neutral_words():
    text = flat(render_text(specimen("avis_rejet")))
    assert "Motif indiqué : vos droits n'étaient pas ouverts à cette date auprès de votre caisse." in text
    assert "Motif" not in flat(render_text(replace(specimen("avis_rejet"), rejection_reason="")))


def test_a_formal_notice_says_what_happens_next_and_names_the_agency():
    text = flat(render_text(specimen("mise_en_demeure")))
    assert ("sans règlement ni nouvelles de votre part dans ce délai, votre dossier pourra être confié à la société "
            "de recouvrement Recouvrement Conseil Île-de-France, qui vous contactera") in text
    unnamed = flat(render_text(replace(specimen("mise_en_demeure"), agency_name="")))
    assert "pourra être confié à une société de recouvrement, qui vous contactera" in unnamed


def test_the_address_block_ends_with_the_postal_code_and_city_in_capitals_without_punctuation():
    view = specimen("relance_1")
    html = render_html(replace(view, recipient=replace(view.recipient, postal_code="97400",
                                                         city="Saint-Denis (La Réunion)")))
    block = re.search(r'<div class="recipient"[^>]*>(.*?)</div>', html, re.S).group(1)
    assert [line.strip() for line in block.split("<br>")] == ["Mme Claire Martin", "4 allée des Tilleuls",
                                                              "Bâtiment B", "97400 SAINT DENIS LA REUNION"]


def test_a_formal_notice_carries_the_legal_mentions():
    text = flat(render_text(specimen("mise_en_demeure", invoices=2, guarantor=True)))
    assert "Mise en demeure de payer" in text
    assert "Créancier : Centre de santé des Lilas, SIRET 73282932000074" in text
    assert "Débiteur : Mme Claire Martin, 4 allée des Tilleuls, Bâtiment B, 93260 Les Lilas" in text
    assert "article 1344 du Code civil" in text
    assert "la somme de 57,34\xa0€" in text
    assert "dans un délai de quinze (15) jours à compter de la réception de ce courrier" in text
    assert "par les voies de droit, y compris judiciaires" in text
    assert "Aucuns frais ni intérêts ne vous seront réclamés" in text


def test_an_instalment_proposal_lists_the_schedule():
    view = specimen("proposition_echeancier", invoices=2)
    text = render_text(view)
    for index, (due, _cents) in enumerate(view.instalments, start=1):
        assert f"{index} sur 3 | {date_fr(due)} | " in text
    assert f"Total | {format_eur(view.total_due_cents)}" in text


def test_a_letter_to_a_guarantor_names_the_patient_and_nothing_more():
    text = render_text(specimen("relance_2", guarantor=True))
    # Issue #14: "pour le compte de" read as "on behalf of"; the letter says whose account it concerns.
    assert "Ce courrier concerne le compte de Léo Martin, dont vous êtes responsable." in text
    assert "pour le compte de" not in render_text(specimen("mise_en_demeure", guarantor=True))


def test_a_letter_to_the_patient_does_not_say_on_behalf_of():
    assert "pour le compte de" not in render_text(specimen("relance_2"))


def test_markup_in_a_name_is_escaped():
    view = specimen("relance_1")
    hostile = dataclasses.replace(view, recipient=dataclasses.replace(view.recipient, name="<b>Léa</b> & Co"))
    html = render_html(hostile)
    assert "&lt;b&gt;Léa&lt;/b&gt; &amp; Co" in html
    assert "<b>Léa" not in html


def test_the_text_version_has_no_markup_and_no_style():
    text = render_text(specimen("mise_en_demeure", invoices=2))
    assert "<" not in text and "{" not in text and "&nbsp;" not in text


def test_the_text_version_leaves_out_the_window_address_block():
    assert "Bâtiment B" not in render_text(specimen("relance_1"))


def test_a_template_cannot_reach_python_internals():
    template = environment().from_string("{{ view.__class__.__mro__ }}")
    with pytest.raises(SecurityError):
        template.render(view=specimen())


def test_a_template_cannot_call_methods_of_the_view_values():
    for source in ("{{ view.recipient.name.upper() }}", "{{ view.date.year }}",
                   "{{ view.lines.count(1) }}", "{{ '{0.__class__}'.format(view) }}"):
        with pytest.raises((SecurityError, UndefinedError)):
            environment().from_string(source).render(view=specimen())


def test_an_undefined_name_raises_instead_of_printing_nothing():
    with pytest.raises(UndefinedError):
        environment().from_string("{{ view.care_description }}").render(view=specimen())
    with pytest.raises(UndefinedError):
        environment().from_string("{{ patient }}").render(view=specimen())


def test_render_html_refuses_anything_but_a_letter_view():
    with pytest.raises(TypeError):
        render_html({"kind": "relance_1"})


def test_a_view_refuses_a_value_of_the_wrong_type():
    with pytest.raises(TypeError, match="LetterLine.amount_cents must be int"):
        LetterLine("F1", date(2026, 1, 1), date(2026, 2, 1), 12.5, "RF")
    with pytest.raises(TypeError, match="Recipient.name must be str"):
        Recipient(object(), "1 rue", "75001", "Paris")
    with pytest.raises(TypeError, match="LetterView.recipient must be Recipient"):
        dataclasses.replace(specimen(), recipient={"name": "X"})


def test_a_view_whose_total_is_not_the_invoices_less_the_credits_is_refused():
    with pytest.raises(ValueError, match="total_due_cents"):
        dataclasses.replace(specimen(), total_due_cents=1)


def test_an_instalment_plan_that_does_not_add_up_is_refused():
    view = specimen("proposition_echeancier")
    with pytest.raises(ValueError, match="instalments"):
        dataclasses.replace(view, instalments=view.instalments[:1])


def test_a_view_has_no_field_for_medical_data():
    names = {f.name for cls in (LetterView, LetterLine, Recipient) for f in dataclasses.fields(cls)}
    for forbidden in ("nir", "act", "acts", "ccam", "care", "specialty", "diagnosis", "description"):
        assert forbidden not in names


@given(st.dates(min_value=date(1900, 1, 1), max_value=date(2199, 12, 31)))
def test_the_short_french_date_reads_back_as_the_same_date(day):
    from datetime import datetime
    assert datetime.strptime(date_fr(day, short=True), "%d/%m/%Y").date() == day


def test_the_first_of_the_month_is_written_premier():
    assert date_fr(date(2027, 1, 1)) == "1er janvier 2027"


def test_html_to_text_separates_cells_and_paragraphs():
    text = html_to_text("<p>Un</p><table><tr><td>a</td><td>b</td></tr></table><p>Deux<br>trois</p>")
    assert text == "Un\n\na | b\n\nDeux\ntrois\n"


@pytest.mark.parametrize("kind", ["relance_1", "relance_2", "mise_en_demeure"])
def test_newer_overdue_invoices_are_listed_apart_with_their_own_total_and_no_formal_demand(kind):
    view = specimen(kind, invoices=2, also_due=2)
    text = flat(render_text(view))
    subject = text[text.index("Référence du courrier"):text.index("Madame, Monsieur")]
    assert all(line.invoice_number not in subject for line in view.also_due)
    apart = text[text.index("Autres factures arrivées à échéance"):]
    assert all(line.invoice_number in apart for line in view.also_due)
    assert f"la somme de {format_eur(view.total_due_cents)}" in text[:text.index("Autres factures arrivées")]
    assert f"Total également dû | {format_eur(view.also_due_total_cents)}" in apart
    assert ("pas l'objet de la présente mise en demeure" in apart) == (kind == "mise_en_demeure")
    assert scan_text(text) == []


def test_the_also_due_total_must_be_its_invoices_less_the_credits_left():
    view = specimen("relance_2", also_due=1)
    with pytest.raises(ValueError, match="also_due_total_cents"):
        dataclasses.replace(view, also_due_total_cents=view.also_due_total_cents + 1)
