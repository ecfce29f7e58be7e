"""Field types with explicit limits, shared by argument and record models."""

from __future__ import annotations

from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints

STRICT = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=False)

MspId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Identifier = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Modality = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
Sha256 = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
Endpoint = Annotated[
    str, StringConstraints(max_length=256, pattern=r"^(https://)?[A-Za-z0-9.-]+:[0-9]{1,5}(/[A-Za-z0-9._~/-]*)?$")
]
Label = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")]
Reason = Annotated[str, StringConstraints(max_length=512, pattern=r"^[^\x00-\x1f\x7f]*$")]
MetricName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,63}$")]
Count = Annotated[int, Field(ge=0, le=1_000_000_000)]
PageSize = Annotated[int, Field(ge=1, le=100)]
