// SMS encoding and segment counting for the message editor's live counter. A line-by-line
// mirror of shopify_app/sms/encoding.py (which follows Twilio's segment calculator); the browser
// test runs this over a table of strings and compares it with encoding.analyse.
//
// GSM-7: 160 septets in one segment, 153 per segment when split; extension characters cost two
// and an escape pair never splits. UCS-2: 70 UTF-16 code units, 67 when split; a surrogate pair
// (and a user-perceived character up to 67 units) never splits.

export const GSM7 = "GSM-7";
export const UCS2 = "UCS-2";
export const GSM_BASIC = new Set(
  "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
  "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà");
export const GSM_EXTENSION = new Set("\f^{}\\[~]|€");
const SINGLE_GSM = 160, MULTI_GSM = 153, SINGLE_UCS2 = 70, MULTI_UCS2 = 67;

export function isGsmChar(ch) {
  return GSM_BASIC.has(ch) || GSM_EXTENSION.has(ch);
}

function allGsm(text) {
  for (const ch of text) if (!isGsmChar(ch)) return false; // for..of walks code points
  return true;
}

function utf16Units(s) {
  return s.length; // JS strings are UTF-16: length counts code units
}

const ZWJ = "\u200d";
const MAY_EXTEND = /[^\x00-\u02ff]/u;
const MARK = /^\p{M}$/u; // Mn, Mc, Me: what unicodedata.category calls combining marks

function extendsPrevious(ch) {
  const cp = ch.codePointAt(0);
  return ch === ZWJ
    || (cp >= 0xfe00 && cp <= 0xfe0f)
    || (cp >= 0x1f3fb && cp <= 0x1f3ff)
    || (cp >= 0xe0020 && cp <= 0xe007f)
    || (cp >= 0xe0100 && cp <= 0xe01ef)
    || MARK.test(ch);
}

function isRegionalIndicator(ch) {
  const cp = ch.codePointAt(0);
  return cp >= 0x1f1e6 && cp <= 0x1f1ff;
}

// Approximate grapheme clusters exactly as encoding._clusters does.
export function clusters(text) {
  if (!MAY_EXTEND.test(text)) return Array.from(text);
  const out = [];
  let pendingFlag = false;
  for (const ch of text) {
    if (out.length && (extendsPrevious(ch) || out[out.length - 1].endsWith(ZWJ)
                       || (pendingFlag && isRegionalIndicator(ch)))) {
      pendingFlag = false;
      out[out.length - 1] += ch;
      continue;
    }
    out.push(ch);
    pendingFlag = isRegionalIndicator(ch);
  }
  return out;
}

function split(costs, perSegment) {
  let segments = 1, used = 0;
  for (const cost of costs) {
    if (used + cost > perSegment) { segments += 1; used = 0; }
    used += cost;
  }
  return [segments, perSegment - used];
}

function analyseGsm(text) {
  const chars = Array.from(text);
  const costs = chars.map((c) => (GSM_EXTENSION.has(c) ? 2 : 1));
  const total = costs.reduce((a, b) => a + b, 0);
  if (total <= SINGLE_GSM) {
    return { encoding: GSM7, segments: 1, units: total, per_segment: SINGLE_GSM,
             chars_left: SINGLE_GSM - total, ucs2_chars: [] };
  }
  const [segments, left] = split(costs, MULTI_GSM);
  return { encoding: GSM7, segments, units: total, per_segment: MULTI_GSM, chars_left: left,
           ucs2_chars: [] };
}

function analyseUcs2(text) {
  const parts = clusters(text);
  const forcing = [];
  for (const c of parts) if (!allGsm(c) && !forcing.includes(c)) forcing.push(c);
  const total = utf16Units(text);
  if (total <= SINGLE_UCS2) {
    return { encoding: UCS2, segments: 1, units: total, per_segment: SINGLE_UCS2,
             chars_left: SINGLE_UCS2 - total, ucs2_chars: forcing };
  }
  const costs = [];
  for (const cluster of parts) {
    const units = utf16Units(cluster);
    if (units <= MULTI_UCS2) costs.push(units);
    else for (const cp of cluster) costs.push(utf16Units(cp));
  }
  const [segments, left] = split(costs, MULTI_UCS2);
  return { encoding: UCS2, segments, units: total, per_segment: MULTI_UCS2, chars_left: left,
           ucs2_chars: forcing };
}

// {encoding, segments, units, per_segment, chars_left, ucs2_chars} as encoding.analyse.
export function analyse(text) {
  return allGsm(text) ? analyseGsm(text) : analyseUcs2(text);
}

// `text` with look-alikes replaced by GSM-7 characters (the server's GSM_REPLACEMENTS table).
export function suggestGsm(text, replacements) {
  let out = "";
  for (const ch of text) out += Object.prototype.hasOwnProperty.call(replacements, ch) ? replacements[ch] : ch;
  return out;
}
