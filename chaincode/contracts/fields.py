"""Field types with explicit limits, shared by argument and record models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, PlainSerializer, StringConstraints

from swarmfuse.chaincode.contract.canonical import utc_text

STRICT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)


def _to_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("a date-time needs a time zone (e.g. Z or +01:00)")
    return moment.astimezone(UTC)


UtcDateTime = Annotated[
    datetime, AfterValidator(_to_utc), PlainSerializer(utc_text, return_type=str, when_used="json")
]
"""A date-time with a time zone, kept in UTC and written as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""

MspId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Modality = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
OptionalSha256 = Annotated[str, StringConstraints(pattern=r"^([0-9a-f]{64})?$")]
"""A SHA-256, or the empty string for none."""
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Endpoint = Annotated[
    str, StringConstraints(max_length=256, pattern=r"^(https://)?[A-Za-z0-9.-]+:[0-9]{1,5}(/[A-Za-z0-9._~/-]*)?$")
]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Reason = Annotated[str, StringConstraints(max_length=512, pattern=r"^[^\x00-\x1f\x7f]*$")]
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")]
Score = Annotated[str, StringConstraints(pattern=r"^-?[0-9]{1,9}(\.[0-9]{1,12})?$")]
"""A metric's value as decimal text (``"0.7961"``): read as an exact fraction, never as a float."""
DecimalText = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,9}(\.[0-9]{1,18})?$")]
"""A non-negative decimal as text (``"0.00001"``, ``"3.7306316348159374"``): read as an exact fraction."""
Ratio = Annotated[str, StringConstraints(pattern=r"^-?[0-9]{1,64}(/[0-9]{1,64})?$")]
"""An exact rational as ``numerator/denominator`` text (``"3/8"``, ``"-1/4"``, ``"0"``)."""
Count = Annotated[int, Field(ge=0, le=1_000_000_000)]
FileSize = Annotated[int, Field(ge=1, le=1 << 40)]
"""A file's size in bytes, as sent off-chain (at most 1 TiB)."""
PageSize = Annotated[int, Field(ge=1, le=100)]
