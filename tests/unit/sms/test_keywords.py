"""Inbound keyword classification: liberal on opt-out intent, not on the word "stop"."""

from __future__ import annotations

import pytest

from shopify_app.sms.keywords import (
    OPT_OUT_WORDS,
    TWILIO_FILTER_WORDS,
    Keyword,
    classify,
)


@pytest.mark.parametrize(
    "body",
    [
        "STOP", "Stop.", " stop ", "STOP!!", "stop stop stop", "Stop please", "please stop",
        "STOP ALL", "stopall", "Unsubscribe", "cancel", "END", "quit", "optout", "revoke",
        "Arrêt", "ARRET", "arrêter", "Arrêtez !", "désabonner", "désinscrire", "STOP SMS",
        "parar", "Alto", "basta", "cancelar", "detener", "Baja",
    ],
)  # fmt: skip
def test_single_word_opt_outs(body):
    """Keywords are matched ignoring case, accents, whitespace and punctuation."""
    assert classify(body) is Keyword.OPT_OUT


@pytest.mark.parametrize(
    "body",
    [
        "opt out",
        "Opt-out please",
        "How do I opt out?",
        "stop texting me",
        "Please stop messaging me!",
        "stop sending me these",
        "Stop sending texts",
        "STOP THE TEXTS",
        "unsubscribe me",
        "Please unsubscribe me from this list",
        "remove me",
        "Remove my number please",
        "take me off your list",
        "no more texts",
        "No more messages please",
        "don't text me",
        "Don\u2019t text me again",
        "do not message me",
        "I don't want these messages",
        "leave me alone",
        "Wrong number",
        "wrong number, who is this?",
        "You have the wrong number",
        "not interested",
        "STOP. Who is this?",
        "Who is this? Stop",
        "no mas mensajes",
        "No más",
        "darme de baja",
        "Quiero darme de baja",
        "no me envíes más",
        "dejen de enviarme mensajes",
        "quítame de la lista",
        "je ne veux plus recevoir de SMS",
        "ne plus recevoir",
        "me désabonner svp",
        "Arrêtez de m'envoyer des messages",
        "plus de SMS merci",
        "retirez-moi",
    ],
)
def test_phrases_twilio_misses(body):
    """Reasonable ways of saying stop that Twilio's single-word filter does not catch."""
    assert classify(body) is Keyword.OPT_OUT


@pytest.mark.parametrize(
    "body",
    [
        "what time do you stop shipping?",
        "Can I stop by the store",
        "Can I stop by the store tomorrow? It's on my way",
        "When do you stop sending orders for Christmas?",
        "Don't stop the deals!",
        "Cancel my order",
        "I need to cancel my order #1234",
        "When does the sale end?",
        "The end of the season sale is great",
        "I typed the wrong number at checkout",
        "Wrong number on my order confirmation",
        "Please send me the code again",
        "Is the store open on Sunday?",
        "Stop by our booth at the fair",
        "I quit my job, need a new outfit",
        "Help! My order is late",
        "Thanks!",
        "",
        "   ",
    ],
)
def test_not_opt_out(body):
    """Messages that merely contain a stop word are not opt-outs."""
    assert classify(body) is not Keyword.OPT_OUT


@pytest.mark.parametrize(
    ("body", "keyword"),
    [
        ("HELP", Keyword.HELP),
        ("help!", Keyword.HELP),
        ("Info", Keyword.HELP),
        ("ayuda", Keyword.HELP),
        ("Aide", Keyword.HELP),
        ("START", Keyword.OPT_IN),
        ("unstop", Keyword.OPT_IN),
        ("Y", Keyword.CONFIRM),
        ("yes", Keyword.CONFIRM),
        ("YES!", Keyword.CONFIRM),
        ("Yes please", Keyword.CONFIRM),
        ("si", Keyword.CONFIRM),
        ("Sí", Keyword.CONFIRM),
        ("oui", Keyword.CONFIRM),
        ("JOIN", Keyword.JOIN),
        (" join. ", Keyword.JOIN),
        ("Help! My order is late", Keyword.OTHER),
        ("yes I have a question about my order", Keyword.OTHER),
        ("Hello", Keyword.OTHER),
    ],
)
def test_other_keywords(body, keyword):
    """HELP, START/UNSTOP, YES-type confirmations and the join keyword."""
    assert classify(body) is keyword


def test_custom_join_keywords():
    """Shops can set their own join keywords, matched like the others."""
    assert classify("vip", join_keywords=("VIP", "Deals")) is Keyword.JOIN
    assert classify("DEALS!", join_keywords=("VIP", "Deals")) is Keyword.JOIN
    assert classify("join", join_keywords=("VIP",)) is Keyword.OTHER
    assert classify("Summer Club", join_keywords=("summer club",)) is Keyword.JOIN


def test_opt_out_wins():
    """A join keyword can never shadow an opt-out."""
    assert classify("STOP", join_keywords=("STOP",)) is Keyword.OPT_OUT


def test_word_sets():
    """Twilio's filter list is exact; every opt-out word it knows is in ours."""
    twilio_documented = {
        "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
        "START", "YES", "UNSTOP", "HELP", "INFO",
    }  # fmt: skip
    assert twilio_documented == TWILIO_FILTER_WORDS
    assert TWILIO_FILTER_WORDS - {"START", "YES", "UNSTOP", "HELP", "INFO"} <= OPT_OUT_WORDS
    assert all(w == w.upper() and w.isascii() for w in OPT_OUT_WORDS)


def test_keyword_values():
    """Enum values are the stored strings."""
    assert [k.value for k in Keyword] == ["opt_out", "opt_in", "confirm", "help", "join", "other"]
