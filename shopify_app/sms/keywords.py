"""Classify an inbound text: opt-out, opt-in, confirmation, help, join keyword, or anything else.

Twilio's own filter only matches a handful of single words. Since April 2025 the FCC requires
honouring any reasonable way of saying stop, so this module is deliberately liberal about clear
opt-out intent ("stop texting me", "no more texts", "darme de baja", "ne plus recevoir") while
leaving ordinary questions that merely contain "stop" or "end" alone ("what time do you stop
shipping?"). When in doubt between losing a customer and texting someone who asked us not to,
it chooses opting out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from enum import StrEnum


class Keyword(StrEnum):
    OPT_OUT = "opt_out"
    OPT_IN = "opt_in"  # START, UNSTOP
    # Y, YES: confirms a pending opt-in; a service also treats it as resubscribe for an
    # opted-out number, as Twilio does with YES.
    CONFIRM = "confirm"
    HELP = "help"
    JOIN = "join"
    OTHER = "other"


# The words Twilio's advanced opt-out filter acts on by itself (whole message, any case).
TWILIO_FILTER_WORDS = frozenset(
    {
        "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT",
        "START", "YES", "UNSTOP", "HELP", "INFO",
    }
)  # fmt: skip

# Single words that mean "stop" when they are the whole message (accents removed).
OPT_OUT_WORDS = frozenset(
    {
        # English, including Twilio's list
        "STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "OPTOUT", "REVOKE",
        "UNSUB", "REMOVE", "STAHP", "STOPP",
        # Spanish
        "PARAR", "PARA", "ALTO", "BASTA", "CANCELAR", "DETENER", "BAJA", "DESUSCRIBIR",
        "DESUSCRIBIRME", "DESUSCRIBETE",
        # French
        "ARRET", "ARRETE", "ARRETER", "ARRETEZ", "DESABONNER", "DESABONNEMENT", "DESINSCRIRE",
        "DESINSCRIPTION", "DESINSCRIVEZ", "DESABONNEZ",
        # German, Italian, Portuguese (common enough on international lists)
        "ABMELDEN", "ANNULLA", "CANCELLA", "SAIR",
    }
)  # fmt: skip

HELP_WORDS = frozenset({"HELP", "INFO", "AYUDA", "AIDE"})
OPT_IN_WORDS = frozenset({"START", "UNSTOP"})
CONFIRM_WORDS = frozenset({"Y", "YES", "SI", "OUI"})

# Words that may surround a keyword without changing it: "STOP please", "stop it", "STOP SMS"
# (the French convention), "yes thanks".
_FILLER = frozenset(
    {
        "PLEASE", "PLS", "PLZ", "NOW", "IT", "THANKS", "THANK", "YOU", "THX", "TY", "OK", "OKAY",
        "SMS", "TEXT", "TEXTS", "MESSAGES", "MSGS", "ALL", "ME", "MERCI", "SVP", "POR", "FAVOR",
        "GRACIAS",
    }
)  # fmt: skip

# Phrases with clear opt-out intent, matched on normalized text (upper case, no accents,
# apostrophes removed, other punctuation turned into spaces) of the whole message and of each
# sentence; the anchored ones must be a whole sentence. Each is written so that a question about
# orders or the store does not match ("when do you stop sending orders", "I typed the wrong
# number at checkout").
_MSG = r"(?:TEXT|TEXTS|TEXTING|TXT|TXTS|MESSAGE|MESSAGES|MSG|MSGS|SMS|SMSES|PROMOS?|SPAM|ADS)"
_MORE = r"(?:ANY ?MORE |MORE |ANY |THESE |THOSE |THE |YOUR |UR |ALL )?"
_OPT_OUT_PHRASES = [
    r"\bOPT ?OUT\b",
    r"\bUN ?SUBSCRIBE\b",
    r"\bSTOP (?:TEXTING|TXTING|MESSAGING|MSGING|CONTACTING|SPAMMING|BOTHERING)\b",
    r"\bSTOP SENDING (?:ME|US|THESE|THIS|THEM|THOSE|" + _MSG + r")\b",
    r"^(?:PLEASE )?STOP SENDING$",
    r"\bSTOP " + _MORE + _MSG + r"\b",
    r"\b(?:REMOVE|DELETE|UNSUBSCRIBE|DROP) (?:ME|MY NUMBER|MY PHONE|THIS NUMBER)\b",
    r"\bTAKE (?:ME|MY NUMBER|THIS NUMBER) OFF\b",
    r"\bNO MORE " + _MSG + r"\b",
    r"\b(?:DONT|DO NOT|NEVER) (?:TEXT|TXT|MESSAGE|MSG|SMS|CONTACT) (?:ME|US)\b",
    r"\b(?:DONT|DO NOT|NEVER) SEND (?:ME |US )?" + _MORE + _MSG + r"\b",
    r"\b(?:DONT|DO NOT) WANT " + _MORE + _MSG + r"\b",
    r"\bLEAVE ME ALONE\b",
    r"^(?:(?:THIS IS |YOU HAVE |YOUVE GOT |YOU GOT )?(?:THE |A )?)?WRONG (?:NUMBER|PERSON)"
    r"(?: (?:SORRY|PLEASE|PLS|WHO IS THIS|WHOS THIS|WHO ARE YOU|WHO DIS|I DONT KNOW YOU))*$",
    r"^(?:IM |I AM )?NOT INTERESTED(?: ANY ?MORE)?(?: THANKS| THANK YOU)?$",
    # Spanish
    r"\bNO MAS (?:MENSAJES|SMS|TEXTOS)\b",
    r"^NO MAS$",
    r"\b(?:DARME|DARSE|DAME|DENME|DEME|ME DOY) DE BAJA\b",
    r"\bDAR DE BAJA\b",
    r"\bNO (?:ME )?(?:ENVIES|ENVIEN|MANDES|MANDEN|ESCRIBAS|ESCRIBAN) (?:MAS|MENSAJES)\b",
    r"\bNO QUIERO (?:RECIBIR|MAS MENSAJES|MENSAJES)\b",
    r"\bDEJEN? DE (?:ENVIARME|MANDARME|ESCRIBIRME|ENVIAR MENSAJES|MANDAR MENSAJES)\b",
    r"\b(?:QUITAME|QUITENME|QUITARME|SACAME|SACARME|SAQUENME) DE (?:LA|SU|TU|SUS|ESTA) LISTA",
    r"\b(?:ELIMINAR|BORRAR|ELIMINEN|BORREN|ELIMINA|BORRA) MI NUMERO\b",
    # French
    r"\bNE (?:PLUS|PAS) RECEVOIR\b",
    r"\bNE (?:VEUX|SOUHAITE) PLUS (?:RECEVOIR|DE SMS|DE MESSAGES|ETRE CONTACTE)",
    r"\bME (?:DESABONNER|DESINSCRIRE)\b",
    r"\bPLUS DE (?:SMS|MESSAGES|TEXTOS)\b",
    r"\bARRETE[ZR]? DE (?:M ?ENVOYER|ME CONTACTER|M ?ECRIRE|ME SPAMMER)",
    r"\bARRETE[ZR]? (?:LES |VOS )?(?:SMS|MESSAGES|ENVOIS|LENVOI)\b",
    r"\b(?:RETIREZ|SUPPRIMEZ|ENLEVEZ) (?:MOI|MON NUMERO)\b",
]
_OPT_OUT_RE = re.compile("|".join(f"(?:{p})" for p in _OPT_OUT_PHRASES))

_APOSTROPHES_RE = re.compile(r"['\u2018\u2019\u02bc`´]")
_NON_WORD_RE = re.compile(r"[^0-9A-Z]+")
_SENTENCE_RE = re.compile(r"[.!?;\n\r]+")


def _normalize(text: str) -> str:
    """Upper case, accents stripped, apostrophes dropped ("don't" -> "DONT"), other punctuation
    turned into single spaces."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    bare = _APOSTROPHES_RE.sub("", bare).upper()
    return _NON_WORD_RE.sub(" ", bare).strip()


def _is_keyword(words: list[str], keywords: frozenset[str]) -> bool:
    """The words are one keyword (possibly repeated) plus polite filler only."""
    return any(w in keywords for w in words) and all(w in keywords or w in _FILLER for w in words)


def is_opt_out(body: str) -> bool:
    """Whether ``body`` says stop in any reasonable way (see the module docstring)."""
    # "STOP. Who is this?": a sentence on its own can be the opt-out.
    texts = [body, *_SENTENCE_RE.split(body)]
    for text in texts:
        normalized = _normalize(text)
        if _is_keyword(normalized.split(), OPT_OUT_WORDS) or _OPT_OUT_RE.search(normalized):
            return True
    return False


def _without_filler(normalized: str) -> str:
    return " ".join(w for w in normalized.split() if w not in _FILLER)


def _is_join(normalized: str, join_keywords: Sequence[str]) -> bool:
    keywords = {_normalize(k) for k in join_keywords} - {""}
    stripped = _without_filler(normalized)
    return normalized in keywords or (bool(stripped) and stripped in keywords)


def classify(body: str, *, join_keywords: Sequence[str] = ("JOIN",)) -> Keyword:
    """What an inbound text asks for. Case, accents, surrounding whitespace and punctuation are
    ignored; opt-out wins over everything else."""
    if is_opt_out(body):
        return Keyword.OPT_OUT
    normalized = _normalize(body)
    words = normalized.split()
    if _is_keyword(words, HELP_WORDS):
        return Keyword.HELP
    if _is_keyword(words, OPT_IN_WORDS):
        return Keyword.OPT_IN
    if normalized and _is_join(normalized, join_keywords):
        return Keyword.JOIN
    if _is_keyword(words, CONFIRM_WORDS):
        return Keyword.CONFIRM
    return Keyword.OTHER
