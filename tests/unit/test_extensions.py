"""Static checks of the Shopify extensions under extensions/ (no browser, no network)."""

from __future__ import annotations

import gzip
import json
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
THEME = ROOT / "extensions" / "sms-optin"
CHECKOUT = ROOT / "extensions" / "checkout-sms-consent"
BLOCK = THEME / "blocks" / "optin-embed.liquid"
ASSETS = [THEME / "assets" / "tidings-optin.js", THEME / "assets" / "tidings-optin.css"]
BUDGET = 10_240  # bytes of gzip, JS and CSS together

SCHEMA_RE = re.compile(r"{%-?\s*schema\s*-?%}(.*?){%-?\s*endschema\s*-?%}", re.S)


def gzipped_size(data: bytes) -> int:
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def block_schema() -> dict:
    match = SCHEMA_RE.search(BLOCK.read_text(encoding="utf-8"))
    assert match, "optin-embed.liquid has no {% schema %} block"
    return json.loads(match.group(1))


def test_storefront_assets_fit_the_size_budget():
    # Each file is served and compressed on its own: count both ways and hold the larger.
    separately = sum(gzipped_size(p.read_bytes()) for p in ASSETS)
    together = gzipped_size(b"".join(p.read_bytes() for p in ASSETS))
    print(f"gzip JS+CSS: {separately} bytes separately, {together} bytes together")
    assert max(separately, together) <= BUDGET


def test_theme_extension_toml():
    config = tomllib.loads((THEME / "shopify.extension.toml").read_text(encoding="utf-8"))
    assert config["type"] == "theme"
    assert config["name"].strip()


def test_theme_extension_layout():
    for path in [BLOCK, *ASSETS, THEME / "locales" / "en.default.json"]:
        assert path.is_file(), path
    json.loads((THEME / "locales" / "en.default.json").read_text(encoding="utf-8"))


def test_block_is_an_app_embed_with_the_required_settings():
    schema = block_schema()
    assert schema["target"] == "body"
    assert schema["name"].strip()
    settings = {s["id"]: s for s in schema["settings"] if "id" in s}
    assert settings["headline"]["type"] == "text"
    assert settings["offer_text"]["type"] in ("text", "textarea")
    assert settings["button_label"]["type"] == "text"
    assert settings["accent_color"]["type"] == "color"
    assert {o["value"] for o in settings["display_mode"]["options"]} == {"popup", "bar"}
    delay = settings["delay_seconds"]
    assert delay["type"] == "range"
    # Shopify: a range has at most 101 steps and its default must be on a step.
    assert (delay["max"] - delay["min"]) / delay["step"] <= 100
    assert delay["min"] <= delay["default"] <= delay["max"]
    assert settings["show_on_mobile"]["type"] == "checkbox"
    ids = [s["id"] for s in schema["settings"] if "id" in s]
    assert len(ids) == len(set(ids))


def test_block_loads_its_script_deferred_and_its_stylesheet():
    source = BLOCK.read_text(encoding="utf-8")
    assert re.search(
        r"""<script src="{{ 'tidings-optin\.js' \| asset_url }}" defer></script>""", source
    )
    assert "'tidings-optin.css' | asset_url | stylesheet_tag" in source


def test_block_translations_exist():
    strings = json.loads((THEME / "locales" / "en.default.json").read_text(encoding="utf-8"))
    for key in re.findall(r"'([a-z_.]+)' \| t\b", BLOCK.read_text(encoding="utf-8")):
        node = strings
        for part in key.split("."):
            node = node[part]
        assert isinstance(node, str) and node


def test_checkout_extension_toml():
    config = tomllib.loads((CHECKOUT / "shopify.extension.toml").read_text(encoding="utf-8"))
    assert config["api_version"] == "2026-10"
    (ext,) = config["extensions"]
    assert ext["type"] == "ui_extension"
    assert ext["handle"]
    (targeting,) = ext["targeting"]
    assert targeting["target"] == "purchase.checkout.contact.render-after"
    assert (CHECKOUT / targeting["module"]).is_file()
    assert ext["capabilities"]["collect_buyer_consent"]["sms_marketing"] is True


def test_checkout_extension_package():
    package = json.loads((CHECKOUT / "package.json").read_text(encoding="utf-8"))
    assert package["dependencies"]["@shopify/ui-extensions"].startswith("2026.10")
    assert "tsc --noEmit" in package["scripts"]["check"]
    source = (CHECKOUT / "src" / "Checkout.tsx").read_text(encoding="utf-8")
    assert source.count('policy="sms-marketing"') == 2
    assert "<s-consent-checkbox" in source and "<s-consent-phone-field" in source


def test_widget_builds_dom_without_html_strings():
    # Server and merchant text goes in with textContent only: no HTML injection path.
    source = ASSETS[0].read_text(encoding="utf-8")
    assert "innerHTML" not in source and "insertAdjacentHTML" not in source
    assert "document.write" not in source
