"""The commons list and keys that ship in the package: the v2 list verifies with the
shipped release key and carries the v1 entries; the lost key that signed v1 is trusted
for that list only, and only until it expires."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from privacy.signing import Signer, entry
from webmodels.commons.gate import shipped_document
from webmodels.commons.trust import Trust, TrustedKey, project_keys, shipped_key_text
from webmodels.errors import HostError
from webmodels.signing import key_id, parse_public_key

V1 = (Path(__file__).parent / "data" / "commons-v1.json").read_bytes()  # the first shipped list
NOW = datetime(2026, 12, 6, tzinfo=UTC)


def test_shipped_v2_verifies_with_the_shipped_key() -> None:
    release = parse_public_key(shipped_key_text())
    listed = Trust([TrustedKey(release)]).verify(shipped_document(), now=NOW)
    assert listed.version == 2 and listed.key_id == key_id(release)
    assert listed.expires >= NOW + timedelta(days=365)
    first = Trust(project_keys()).verify(V1, now=NOW)
    assert first.models and set(first.models) <= set(listed.models)  # v2 carries v1
    # The project's trust, as a host without `commons_keys` builds it.
    default = Trust.from_config(None)
    assert default.verify(shipped_document(), now=NOW).version == 2
    assert default.verify(V1, now=NOW).version == 1
    assert {k.id for k in default.keys} == {key_id(release), first.key_id}


def test_the_retired_key_is_trusted_for_the_v1_list_until_it_expires() -> None:
    (retired,) = [k for k in project_keys() if k.max_version is not None]
    assert retired.max_version == 1 and retired.until == datetime(2027, 11, 29, tzinfo=UTC)
    assert Trust(project_keys()).verify(V1, now=NOW).key_id == retired.id
    with pytest.raises(HostError, match="expired"):
        Trust(project_keys()).verify(V1, now=datetime(2027, 11, 29, tzinfo=UTC))


def test_a_retired_key_signs_nothing_newer_or_longer_lived() -> None:
    """The rule the lost key is under, with a throw-away key (nobody holds the lost one)."""
    signer = Signer()
    until = datetime.now(UTC) + timedelta(days=60)
    trust = Trust([TrustedKey(signer.key.public_key(), project=True, max_version=1, until=until)])
    now = datetime.now(UTC)
    assert trust.verify(signer.sign(1, [entry(b"m")]), now=now).version == 1
    with pytest.raises(HostError, match="only for lists up to version 1"):
        trust.verify(signer.sign(2, [entry(b"m")]), now=now)
    with pytest.raises(HostError, match="nothing it signed counts after"):
        trust.verify(signer.sign(1, [entry(b"m")], expires_in=timedelta(days=90)), now=now)
    unlimited = Trust([TrustedKey(signer.key.public_key())])
    assert unlimited.verify(signer.sign(2, [entry(b"m")]), now=now).version == 2


def test_commons_keys_project_word_and_own_keys() -> None:
    own = Signer()
    trust = Trust.from_config(["project", own.public])
    assert len(trust.keys) == 3 and trust.get(key_id(own.key.public_key())) is not None
    only_own = Trust.from_config([own.public])
    with pytest.raises(HostError, match="does not trust"):
        only_own.verify(shipped_document(), now=NOW)
