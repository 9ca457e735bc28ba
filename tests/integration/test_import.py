"""CSV import: consent evidence required, numbers normalised, duplicates counted, idempotent,
resumable, and a refused-rows report downloadable as CSV."""

from __future__ import annotations

import csv
import io
import os
import time
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from shopify_app.extensions import db
from shopify_app.models import ConsentEvent, ImportJob, Shop, Subscriber
from shopify_app.services import imports
from tests.conftest import ApiClient, make_shop

GOOD_ROWS = [
    # phone, email, first, last, consent date, source
    ("(415) 555-0101", "ada@example.com", "Ada", "Lovelace", "2024-03-01", "Klaviyo form"),
    ("+1 415 555 0102", "", "Grace", "Hopper", "2024-03-02T10:30:00Z", "checkout checkbox"),
    ("415.555.0103", "", "", "", "03/04/2024", "POS sign-up"),
]


def make_csv(rows: list[tuple[str, ...]], header: tuple[str, ...] | None = None) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(
        header or ("Phone", "Email", "First Name", "Last Name", "Consent Date", "Consent Source")
    )
    writer.writerows(rows)
    return out.getvalue().encode()


def upload(api: ApiClient, content: bytes, name: str = "subscribers.csv"):  # noqa: ANN201
    return api.post(
        "/api/imports",
        data={"file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def events(shop_id: int) -> list[ConsentEvent]:
    return list(db.session.scalars(ConsentEvent.for_shop(shop_id).order_by(ConsentEvent.id)))


def test_import_good_duplicate_invalid_and_consentless_rows(
    api: ApiClient, shop: Shop, run_jobs
) -> None:
    """Good rows become subscribed with an import ledger event; the rest are reported."""
    shop_id = shop.id  # run_jobs ends the session: keep ids, not instances
    existing = Subscriber(
        shop_id=shop_id, phone="+14155550199", status="unsubscribed", source="keyword"
    )
    db.session.add(existing)
    db.session.commit()
    future = (datetime.now(UTC) + timedelta(days=3)).date().isoformat()
    rows = [
        *GOOD_ROWS,
        ("415-555-0101", "", "", "", "2024-05-01", "again"),  # row 5: same number as row 2
        ("(415) 555-0199", "", "", "", "2024-01-01", "old list"),  # row 6: opted out already
        ("12345", "", "", "", "2024-01-01", "form"),  # row 7: too short
        ("(415) 555-0110", "", "", "", "", "form"),  # row 8: no consent date
        ("(415) 555-0111", "", "", "", "2024-01-01", ""),  # row 9: no consent source
        ("(415) 555-0112", "", "", "", future, "form"),  # row 10: future date
        ("(415) 555-0113", "", "", "", "last spring", "form"),  # row 11: unreadable date
        ("", "nobody@example.com", "", "", "2024-01-01", "form"),  # row 12: no phone
        ("+1 800 555 0100", "", "", "", "2024-01-01", "form"),  # row 13: toll-free
    ]
    resp = upload(api, make_csv(rows))
    assert resp.status_code == 202, resp.get_json()
    body = resp.get_json()
    assert body["status"] == "queued"
    assert body["total_rows"] == 12

    run_jobs()
    job = api.get(f"/api/imports/{body['id']}").get_json()
    assert job["status"] == "done"
    assert (job["processed_rows"], job["imported"], job["duplicates"], job["refused"]) == (
        12,
        3,
        2,
        7,
    )
    reasons = {r["row"]: r["reason"] for r in job["refused_rows"]}
    assert reasons == {
        7: "That number looks too short.",
        8: "Missing consent date: rows without evidence of consent are not imported.",
        9: "Missing consent source: rows without evidence of consent are not imported.",
        10: "Consent date is in the future.",
        11: "Consent date is not a date we can read (use YYYY-MM-DD).",
        12: "Missing phone number.",
        13: "That number can't receive texts (it is a toll-free number).",
    }

    db.session.expire_all()
    subs = {s.phone: s for s in db.session.scalars(Subscriber.for_shop(shop_id))}
    assert subs["+14155550199"].status == "unsubscribed"  # an import never undoes a STOP
    ada = subs["+14155550101"]
    assert (ada.status, ada.source, ada.email, ada.first_name) == (
        "subscribed",
        "import",
        "ada@example.com",
        "Ada",
    )
    assert ada.subscribed_at == datetime(2024, 3, 1, 5, 0, tzinfo=UTC)  # midnight New York
    assert ada.timezone == "America/Los_Angeles"
    assert subs["+14155550102"].subscribed_at == datetime(2024, 3, 2, 10, 30, tzinfo=UTC)
    assert subs["+14155550103"].subscribed_at.date().isoformat() == "2024-03-04"  # US: M/D/Y

    ledger = events(shop_id)
    assert len(ledger) == 3
    by_sub = {e.subscriber_id: e for e in ledger}
    ada_event = by_sub[ada.id]
    assert (ada_event.kind, ada_event.source) == ("confirmed", "import")
    assert ada_event.evidence_id == f"import:{body['id']}:row 2"
    assert ada_event.occurred_at == ada.subscribed_at
    assert "Klaviyo form" in ada_event.note
    assert db.session.get(ImportJob, body["id"]).csv_text is None  # the file is not kept

    report = api.get(f"/api/imports/{body['id']}/errors.csv")
    assert report.status_code == 200
    assert report.mimetype == "text/csv"
    lines = list(csv.reader(io.StringIO(report.get_data(as_text=True))))
    assert lines[0] == ["row", "phone", "reason"]
    assert lines[1] == ["7", "12345", "That number looks too short."]
    assert len(lines) == 8


def test_reimport_is_idempotent(api: ApiClient, shop: Shop, run_jobs) -> None:
    """The same file twice: nothing new, every row a duplicate, the ledger unchanged."""
    shop_id = shop.id
    content = make_csv(GOOD_ROWS)
    first = upload(api, content).get_json()
    run_jobs()
    before = [(e.subscriber_id, e.kind, e.evidence_id) for e in events(shop_id)]
    second = upload(api, content).get_json()
    run_jobs()
    job = api.get(f"/api/imports/{second['id']}").get_json()
    assert (job["imported"], job["duplicates"], job["refused"]) == (0, 3, 0)
    assert [(e.subscriber_id, e.kind, e.evidence_id) for e in events(shop_id)] == before
    assert api.get(f"/api/imports/{first['id']}").get_json()["imported"] == 3


def test_interrupted_import_resumes_after_last_chunk(shop: Shop) -> None:
    """A job that committed some chunks before dying continues where it stopped."""
    rows = [(f"(415) 555-{2000 + i:04d}", "", "", "", "2024-01-01", "form") for i in range(5)]
    job = imports.create_job(shop, "list.csv", make_csv(rows).decode())
    db.session.commit()
    # The first run committed the first two rows' chunk, then its worker died.
    imports.run_import(job, shop, chunk_size=2)
    assert (job.processed_rows, job.imported) == (5, 5)

    rerun = imports.create_job(shop, "list.csv", make_csv(rows).decode())
    rerun.status, rerun.processed_rows = "running", 3  # three rows were done by a dead worker
    db.session.commit()
    imports.run_import(rerun, shop, chunk_size=2)
    assert (rerun.processed_rows, rerun.imported, rerun.duplicates) == (5, 0, 2)
    assert rerun.status == "done"


def test_file_without_consent_columns_refused(api: ApiClient, shop: Shop) -> None:
    """A file with no consent date/source column is refused at upload, readably."""
    resp = upload(api, make_csv([("4155550101", "Ada")], header=("phone", "first_name")))
    assert resp.status_code == 400
    message = resp.get_json()["error"]["message"]
    assert "consent date" in message and "consent source" in message
    assert db.session.scalar(select(func.count()).select_from(ImportJob)) == 0


def test_imports_are_scoped_to_the_shop(
    api: ApiClient, client: FlaskClient, shop: Shop, run_jobs
) -> None:
    """Another shop's token cannot read an import or its report."""
    job = upload(api, make_csv(GOOD_ROWS)).get_json()
    other = make_shop("third-shop.myshopify.com")
    other_api = ApiClient(client, other.domain)
    assert other_api.get(f"/api/imports/{job['id']}").status_code == 404
    assert other_api.get(f"/api/imports/{job['id']}/errors.csv").status_code == 404
    assert other_api.get("/api/imports").get_json()["items"] == []


@pytest.mark.slow
def test_import_100k_rows_speed(shop: Shop, capsys: pytest.CaptureFixture[str]) -> None:
    """100 000 rows import in well under a minute (the figure is printed)."""
    count = int(os.environ.get("IMPORT_BENCH_ROWS", "100000"))
    area_codes = (
        "201",
        "202",
        "206",
        "212",
        "213",
        "214",
        "215",
        "303",
        "312",
        "404",
        "415",
        "503",
        "512",
        "602",
        "617",
        "702",
        "713",
        "718",
        "805",
        "917",
    )
    rows = [
        (
            f"+1{area_codes[i // 10_000 % 20]}555{i % 10_000:04d}",
            f"p{i}@example.com",
            "Pat",
            "Doe",
            "2024-01-01",
            "checkout",
        )
        for i in range(count)
    ]
    job = imports.create_job(shop, "big.csv", make_csv(rows).decode())
    db.session.commit()
    started = time.perf_counter()
    imports.run_import(job, shop)
    elapsed = time.perf_counter() - started
    with capsys.disabled():
        print(
            f"\nimport of {count} rows on {db.engine.dialect.name}: {elapsed:.1f} s "
            f"({count / elapsed:,.0f} rows/s); imported {job.imported}, refused {job.refused}"
        )
    assert job.imported + job.refused + job.duplicates == count
    assert job.imported > count * 0.9
    assert elapsed < 60
