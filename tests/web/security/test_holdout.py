"""Finding 6: pairs contributed through uploads must not feed the holdout that decides promotion, even
before the operator registers one; imported pairs still form the automatic holdout."""

from __future__ import annotations

from pathlib import Path

from tests.web.conftest import SAMPLES, Images, upload
from tests.web.security.conftest import Site
from web.core.registry import pairs as pair_service


def test_contributed_pairs_never_enter_the_holdout(laptop: Site, images: Images, tmp_path: Path) -> None:
    for low in (images.low, images.other_low):
        job = upload(laptop.client, low, reference=images.high, contribute="true").get_json()
        laptop.finish(job["id"])
    wired = laptop.app.extensions["lowlight"]
    with laptop.sessions()() as session:
        created = pair_service.collect_from_jobs(session, wired.storage, wired.settings)
        assert len(created) == 2 and pair_service.holdout_pairs(session) == []
        folder = tmp_path / "lol"
        for kind in ("low", "high"):
            (folder / kind).mkdir(parents=True)
            (folder / kind / "9.png").write_bytes((SAMPLES / kind / "9.png").read_bytes())
        imported, _ = pair_service.import_folder(session, wired.storage, wired.settings, folder)
        assert [pair.id for pair in pair_service.holdout_pairs(session)] == [imported[0].id]
