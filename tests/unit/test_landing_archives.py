"""Zip deliveries (``delivery.archive_type: zip``): the archive lands as Planet listed it, and is verified
member by member (CRC-32, inner manifest.json digests) by reading it back from the bucket."""

from __future__ import annotations

import json
import zipfile
from typing import Any

import pytest
from landing_fakes import Fault, content, digests, inner_manifest_for, zip_of
from order_core.errors import ResultVerificationFailed
from order_core.models.order import LandedFile
from order_core.services.landing import LandingTuning
from test_landing_service import BASE, KIB, ORDER, Rig, no_sleeping  # noqa: F401 - the fixture applies here

ITEM = "20240909_021318_75_24ee"
ARCHIVE = "an_order_5ece1dc0.zip"


def members() -> dict[str, bytes]:
    return {
        f"PSScene/{ITEM}_3B_AnalyticMS_SR_8b.tif": content(150 * KIB, seed=1),
        f"PSScene/{ITEM}_3B_udm2.tif": content(20 * KIB, seed=2),
        f"PSScene/{ITEM}_metadata.json": json.dumps(
            {
                "id": ITEM,
                "type": "Feature",
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [[[10.0, 50.0], [10.5, 50.0], [10.5, 50.5], [10.0, 50.5], [10.0, 50.0]]],
                },
                "properties": {"acquired": "2024-09-09T02:13:18.75Z", "item_type": "PSScene"},
            }
        ).encode(),
    }


def annotations() -> dict[str, dict[str, str]]:
    tags = {"planet/item_id": ITEM, "planet/item_type": "PSScene"}
    return {
        f"PSScene/{ITEM}_3B_AnalyticMS_SR_8b.tif": {**tags, "planet/asset_type": "ortho_analytic_8b_sr"},
        f"PSScene/{ITEM}_3B_udm2.tif": {**tags, "planet/asset_type": "ortho_udm2"},
    }


def planet_zip(**kwargs: Any) -> bytes:
    inside = members()
    return zip_of(inside, inner_manifest=inner_manifest_for(inside, annotations()), **kwargs)


def top_manifest(archive: bytes | None, *, listed: bool = True, with_digests: bool = True) -> bytes:
    """The order-level manifest.json of a zip delivery: it lists the archive (or, here, may not)."""
    files = []
    if listed and archive is not None:
        entry: dict[str, Any] = {"path": ARCHIVE, "media_type": "application/zip", "size": len(archive)}
        if with_digests:
            md5, sha256 = digests(archive)
            entry["digests"] = {"md5": md5, "sha256": sha256}
        files.append(entry)
    return json.dumps({"name": "", "files": files}).encode()


def flip_in_member(archive: bytes, member: str) -> bytes:
    """The archive with one byte of a stored member's data changed: same structure, a wrong CRC-32."""
    with zipfile.ZipFile(__import__("io").BytesIO(archive)) as reader:
        info = reader.getinfo(member)
    header = info.header_offset
    name_length = int.from_bytes(archive[header + 26 : header + 28], "little")
    extra_length = int.from_bytes(archive[header + 28 : header + 30], "little")
    at = header + 30 + name_length + extra_length + info.compress_size // 2
    return archive[:at] + bytes([archive[at] ^ 0xFF]) + archive[at + 1 :]


def report_keys(rig: Rig) -> list[str]:
    return [key for key in rig.bucket.bodies if "/archives/" in key]


# --- what lands --------------------------------------------------------------------------------------------


def test_zip_order_lands_the_archive_as_delivered_with_every_member_verified() -> None:
    archive = planet_zip()
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive))

    progress = rig.land()

    assert (progress.complete, progress.landed_files) == (True, 1)
    assert rig.landed_paths() == {ARCHIVE, "manifest.json", "delivery.json"}
    assert rig.bucket.bodies[f"{BASE}/{ARCHIVE}"] == archive  # as Planet made it: nothing extracted
    delivery = json.loads(rig.bucket.bodies[f"{BASE}/delivery.json"])
    listed = {m["path"]: m for m in delivery["archives"][ARCHIVE]["members"]}
    assert set(listed) == {*members(), "manifest.json"}
    for path, data in members().items():
        assert (listed[path]["size"], listed[path]["sha256"]) == (len(data), digests(data)[1])
    assert "manifest.json" in delivery["archives"][ARCHIVE]["verified"]
    assert [item.path for item in rig.repo.record.results] == ["manifest.json", ARCHIVE]


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_zip_archive_written_with_data_descriptors_verifies(compression: int) -> None:
    archive = planet_zip(data_descriptors=True, compression=compression)
    with zipfile.ZipFile(__import__("io").BytesIO(archive)) as reader:
        assert all(info.flag_bits & 0x08 for info in reader.infolist())  # sizes after the data
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive))

    assert rig.land().complete
    assert len(json.loads(rig.bucket.bodies[f"{BASE}/delivery.json"])["archives"][ARCHIVE]["members"]) == 4


def test_zip_archive_is_read_back_in_blocks_not_whole() -> None:
    archive = planet_zip()
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive))
    rig.tuning = LandingTuning(transfer=rig.tuning.transfer, archive_block_bytes=16 * KIB)

    assert rig.land().complete
    ranged_reads = rig.store.calls.count("get_range")
    assert ranged_reads >= len(archive) // (16 * KIB)  # every block fetched on its own, none larger


# --- what fails --------------------------------------------------------------------------------------------


def test_zip_archive_whose_member_crc_is_wrong_fails_the_order_naming_the_member() -> None:
    # Planet's manifest lists the broken archive's own digests: the bytes arrived as made, the archive is bad.
    member = f"PSScene/{ITEM}_3B_AnalyticMS_SR_8b.tif"
    archive = flip_in_member(planet_zip(), member)
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive))

    with pytest.raises(ResultVerificationFailed, match=f"{ARCHIVE}.*CRC.*{member}"):
        rig.land()

    fetched = rig.planet_files.ranges_fetched(ARCHIVE)
    assert len(fetched) == len(set(fetched))  # downloaded once: landing again could not help
    assert ARCHIVE not in {item.path for item in rig.repo.record.results}  # not reported as landed
    assert report_keys(rig) == []


def test_zip_member_that_differs_from_the_inner_manifest_fails_the_order() -> None:
    inside = members()
    listed = inner_manifest_for(inside, annotations())
    listed["files"][1]["digests"]["sha256"] = "0" * 64
    archive = zip_of(inside, inner_manifest=listed)
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive))

    with pytest.raises(ResultVerificationFailed, match=rf"member PSScene/{ITEM}_3B_udm2.tif: sha256"):
        rig.land()


def test_zip_inner_manifest_listing_a_file_the_archive_lacks_fails_the_order() -> None:
    inside = members()
    listed = inner_manifest_for({**inside, "PSScene/missing.tif": b"x"}, annotations())
    archive = zip_of(inside, inner_manifest=listed)
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive))

    with pytest.raises(ResultVerificationFailed, match=r"does not hold: PSScene/missing\.tif"):
        rig.land()


def test_zip_member_with_a_path_escaping_its_folder_fails_the_order() -> None:
    archive = zip_of({"../../evil.tif": b"x" * 10})
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive))

    with pytest.raises(ResultVerificationFailed, match="escape"):
        rig.land()


def test_file_that_is_not_a_zip_but_named_like_one_fails_the_order() -> None:
    not_a_zip = content(30 * KIB, seed=5)
    rig = Rig({ARCHIVE: not_a_zip}, manifest=top_manifest(not_a_zip))

    with pytest.raises(ResultVerificationFailed, match="not a valid zip archive"):
        rig.land()


# --- archives the order's manifest gives no digests for ----------------------------------------------------


@pytest.mark.parametrize("listed", [True, False], ids=["listed-without-digests", "not-listed"])
def test_zip_archive_without_manifest_digests_lands_verified_by_its_members(listed: bool) -> None:
    archive = planet_zip()
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive, listed=listed, with_digests=False))

    assert rig.land().complete

    assert rig.bucket.bodies[f"{BASE}/{ARCHIVE}"] == archive
    landed = {item.path: item for item in rig.repo.record.results}[ARCHIVE]
    assert (landed.size, landed.md5, landed.sha256) == (len(archive), *digests(archive))
    assert (
        "manifest.json"
        in json.loads(rig.bucket.bodies[f"{BASE}/delivery.json"])["archives"][ARCHIVE]["verified"]
    )


def test_zip_archive_without_digests_damaged_in_transit_is_landed_again() -> None:
    archive = planet_zip()
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive, with_digests=False))
    rig.planet_files.faults.append(Fault("corrupt", ARCHIVE, on="storage"))

    assert rig.land().complete

    assert rig.bucket.bodies[f"{BASE}/{ARCHIVE}"] == archive
    fetched = rig.planet_files.ranges_fetched(ARCHIVE)
    assert len(fetched) == 2 * len(set(fetched))  # every byte twice: the whole archive landed again


def test_zip_archive_without_digests_that_never_verifies_fails_the_order() -> None:
    archive = flip_in_member(planet_zip(), f"PSScene/{ITEM}_3B_udm2.tif")
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive, with_digests=False))

    with pytest.raises(ResultVerificationFailed, match="CRC"):
        rig.land()

    assert ARCHIVE not in {item.path for item in rig.repo.record.results}


# --- resuming ----------------------------------------------------------------------------------------------


def test_zip_archive_landed_but_not_yet_verified_is_verified_from_the_bucket_without_downloading() -> None:
    archive = planet_zip()
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive))
    assert rig.land().complete
    # As if the invocation had been killed after the upload, before the members were verified.
    for key in report_keys(rig):
        del rig.bucket.bodies[key]
    rig.repo.record = rig.repo.record.model_copy(update={"results": [], "delivery_key": None})
    fetched = rig.fetches(ARCHIVE)

    assert rig.land().complete

    assert rig.fetches(ARCHIVE) == fetched
    assert len(report_keys(rig)) == 1
    assert "get_range" in rig.store.calls


def test_zip_archive_verified_earlier_is_neither_downloaded_nor_read_again() -> None:
    archive = planet_zip()
    rig = Rig({ARCHIVE: archive}, manifest=top_manifest(archive))
    assert rig.land().complete
    rig.repo.record = rig.repo.record.model_copy(update={"results": [], "delivery_key": None})
    fetched = rig.fetches(ARCHIVE)

    assert rig.land().complete

    assert rig.fetches(ARCHIVE) == fetched
    assert "get_range" not in rig.store.calls
    assert {item.path for item in rig.repo.record.results} == {"manifest.json", ARCHIVE}


def test_failed_order_does_not_report_an_archive_whose_members_were_not_verified() -> None:
    good = planet_zip()
    broken = flip_in_member(zip_of({"PSScene/other.tif": content(10 * KIB, seed=9)}), "PSScene/other.tif")
    files = {ARCHIVE: good, "broken.zip": broken}
    manifest = json.loads(top_manifest(good))
    md5, sha256 = digests(broken)
    manifest["files"].append(
        {"path": "broken.zip", "size": len(broken), "digests": {"md5": md5, "sha256": sha256}}
    )
    rig = Rig(files, manifest=json.dumps(manifest).encode())

    with pytest.raises(ResultVerificationFailed, match=r"broken\.zip"):
        rig.land()

    reported = {item.path for item in rig.repo.record.results}
    assert "broken.zip" not in reported
    assert f"{BASE}/broken.zip" in rig.bucket.bodies  # it is there, unverified, and not listed
    assert all(isinstance(item, LandedFile) for item in rig.repo.record.results)
    assert ORDER in rig.repo.record.order_id


def test_failed_order_reports_a_verified_archive_the_manifest_gave_no_digests_for() -> None:
    # Landed in parts without digests in its object metadata: its report is what vouches for it.
    archive = planet_zip()
    assert len(archive) > 64 * KIB  # more than one part
    manifest = json.loads(top_manifest(archive, with_digests=False))
    other = content(10 * KIB, seed=3)
    md5, sha256 = digests(other)
    manifest["files"].append(
        {"path": "other.tif", "size": len(other), "digests": {"md5": md5, "sha256": sha256}}
    )
    # One file at a time, the archive first: it is verified before the other file fails the order.
    rig = Rig({ARCHIVE: archive, "other.tif": other}, manifest=json.dumps(manifest).encode(), file_workers=1)
    rig.planet_files.faults.append(Fault("corrupt", "other.tif", times=99))

    with pytest.raises(ResultVerificationFailed, match=r"other\.tif"):
        rig.land()

    reported = {item.path: item for item in rig.repo.record.results}
    assert set(reported) == {ARCHIVE}
    assert (reported[ARCHIVE].md5, reported[ARCHIVE].sha256) == digests(archive)
