"""Validation of a schedule's media against each network's media profile, before anything is
written: media that can never fit (a panorama beyond a network's aspect range without
``mediaFit``, a clip longer than a network allows) is refused at /v1/posts/validate and apply,
not discovered at publish time.

Only assets Herald already holds and has probed can be judged here; media behind other URLs is
judged when it has been downloaded (the post's prepare step), with the same rules.
"""

from __future__ import annotations

from sqlmodel import Session

from herald.assets import parse_delivery_url
from herald.schedule import Schedule, ScheduleProblem, problem_path
from herald.settings import Settings
from media.types import MediaError, MediaInfo
from store.models import Asset


def media_problems(session: Session, settings: Settings, workspace_id: str, schedule: Schedule) -> list[ScheduleProblem]:
    from media.pipeline import plan
    from providers.media_profiles import profile_for

    problems: list[ScheduleProblem] = []
    for post in schedule.posts:
        if not post.provider or not post.media:
            continue
        try:
            profile = profile_for(post.provider, post.post_type)
        except KeyError:
            continue
        fit = post.settings.get("mediaFit") if post.settings.get("mediaFit") in ("pad", "crop") else None
        for index, ref in enumerate(post.media):
            ours = parse_delivery_url(settings, ref.url)
            if ours is None:
                continue
            asset = session.get(Asset, ours[0])
            path = problem_path(post, f"assets[{index}]")
            if (asset is None or asset.workspace_id != workspace_id or asset.delivery_token != ours[1]
                    or asset.status == "deleted"):
                problems.append(ScheduleProblem(path=path, message="no such asset in this workspace"))
            elif asset.status == "failed":
                problems.append(ScheduleProblem(path=path, message=f"the asset could not be processed: {asset.error}"))
            elif asset.status in ("ready", "pending_delete") and asset.meta:
                try:
                    plan(MediaInfo(**asset.meta), profile, fit)
                except MediaError as exc:
                    problems.append(ScheduleProblem(path=path, message=exc.message))
    return problems
