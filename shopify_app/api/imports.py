"""Subscriber CSV imports: upload (queued as a job), progress, and the refused rows report."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView
from flask_smorest import Blueprint
from flask_smorest.fields import Upload
from marshmallow import Schema, fields

from shopify_app.api._common import (
    ApiError,
    PageArgsSchema,
    PageMetaSchema,
    current_shop,
    keyset_page,
)
from shopify_app.extensions import db
from shopify_app.models import ImportJob
from shopify_app.services.imports import ImportFileError, create_job, refused_rows_csv

blp = Blueprint(
    "imports",
    __name__,
    url_prefix="/api/imports",
    description="Import subscribers (with their consent evidence) from a CSV file.",
)

MAX_UPLOAD_BYTES = 30 * 1024 * 1024  # ~300 000 typical rows


class UploadSchema(Schema):
    file = Upload(
        required=True,
        metadata={
            "description": "CSV with phone, email, first_name, last_name, consent_date, "
            "consent_source columns"
        },
    )


class RefusedRowSchema(Schema):
    row = fields.Integer()
    phone = fields.String()
    reason = fields.String()


class ImportJobSchema(Schema):
    id = fields.Integer()
    filename = fields.String()
    status = fields.String(metadata={"description": "queued, running, done or failed"})
    total_rows = fields.Integer()
    processed_rows = fields.Integer()
    imported = fields.Integer()
    duplicates = fields.Integer()
    refused = fields.Integer()
    refused_rows = fields.List(fields.Nested(RefusedRowSchema))
    created_at = fields.DateTime()
    finished_at = fields.DateTime(allow_none=True)


class ImportSummarySchema(ImportJobSchema):
    class Meta:
        exclude = ("refused_rows",)


class ImportPageSchema(PageMetaSchema):
    items = fields.List(fields.Nested(ImportSummarySchema))


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Excel on Windows saves "CSV" as Windows-1252 unless told otherwise.
        return raw.decode("cp1252", errors="replace")


def _get(import_id: int) -> ImportJob:
    job = ImportJob.get_for_shop(current_shop().id, import_id)
    if job is None:
        raise ApiError(404, "not_found", "That import does not exist.")
    return job


@blp.route("")
class Imports(MethodView):
    @blp.arguments(PageArgsSchema, location="query")
    @blp.response(200, ImportPageSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """The shop's imports, newest first."""
        page = keyset_page(
            ImportJob.for_shop(current_shop().id), ImportJob.id, args["cursor"], args["limit"]
        )
        return {"items": page.items, "next_cursor": page.next_cursor, "limit": page.limit}

    @blp.arguments(UploadSchema, location="files")
    @blp.response(202, ImportJobSchema)
    def post(self, files: dict[str, Any]) -> ImportJob:
        """Upload a CSV; the import runs in the background (poll the import for progress)."""
        if (request.content_length or 0) > MAX_UPLOAD_BYTES:
            raise ApiError(413, "too_large", "The file is too large (30 MB at most).")
        upload = files["file"]
        raw = upload.read(MAX_UPLOAD_BYTES + 1)
        if len(raw) > MAX_UPLOAD_BYTES:
            raise ApiError(413, "too_large", "The file is too large (30 MB at most).")
        try:
            job = create_job(current_shop(), upload.filename or "import.csv", _decode(raw))
        except ImportFileError as exc:
            raise ApiError(400, "invalid_file", str(exc)) from None
        db.session.commit()
        return job


@blp.route("/<int:import_id>")
class ImportDetail(MethodView):
    @blp.response(200, ImportJobSchema)
    def get(self, import_id: int) -> ImportJob:
        """Progress and counts; refused rows with their reasons."""
        return _get(import_id)


@blp.route("/<int:import_id>/errors.csv")
class ImportErrors(MethodView):
    @blp.response(200, {"type": "string"}, content_type="text/csv")
    def get(self, import_id: int) -> Response:
        """The refused rows report as CSV (row, phone, reason)."""
        job = _get(import_id)
        return Response(
            refused_rows_csv(job),
            mimetype="text/csv",
            headers={
                "Content-Disposition": f'attachment; filename="import-{job.id}-refused.csv"',
                "Cache-Control": "no-store",
            },
        )
