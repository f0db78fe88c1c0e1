"""Sync the summaries CaseBridge grants your organisation, honouring retain_until and withdrawals.

Run against the demo network (after `make run`):

    python docs/examples/partner_sync.py --client-id youth-ngo-reader \
        --client-secret "$(python3 -c "import json; print(next(c['client_secret'] for c in json.load(open('var/demo-clients.json')) if c['client_id'] == 'youth-ngo-reader'))")"
"""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path
from typing import Any

import httpx

PURPOSE = "service_provision"  # the purpose your agreement grants summaries for


def token(client: httpx.Client, client_id: str, client_secret: str) -> str:
    response = client.post("/v1/token", data={
        "grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret,
    })
    response.raise_for_status()
    return str(response.json()["access_token"])


def sync(client: httpx.Client, access_token: str, store: dict[str, Any]) -> dict[str, Any]:
    """One incremental sync into `store` ({"summaries": {...}, "synced_at": ..., "etag": ...})."""
    headers = {"Authorization": f"Bearer {access_token}", "X-Purpose": PURPOSE}
    params: dict[str, Any] = {"limit": 100}
    if store.get("synced_at"):
        params["updated_since"] = store["synced_at"]
    if store.get("etag"):
        headers["If-None-Match"] = store["etag"]
    summaries: dict[str, Any] = store.setdefault("summaries", {})
    first = True
    while True:
        response = client.get("/v1/summaries", params=params, headers=headers)
        if response.status_code == 304:  # nothing changed: cheap
            break
        response.raise_for_status()
        page = response.json()
        if first:
            store["etag"] = response.headers.get("ETag")
            store["synced_at"] = page["synced_at"]
            for referral_id in page["withdrawn"]:  # consent withdrawn or case moved on: delete
                summaries.pop(referral_id, None)
            first = False
        for item in page["items"]:
            summaries[item["id"]] = item
        if not page["next_cursor"]:
            break
        params["cursor"] = page["next_cursor"]
        headers.pop("If-None-Match", None)
    purge_expired(summaries, date.today())
    return store


def purge_expired(summaries: dict[str, Any], today: date) -> None:
    """Keep nothing past its retain_until: the agreement's retention is a promise you made."""
    for referral_id in [k for k, v in summaries.items() if date.fromisoformat(v["retain_until"]) < today]:
        del summaries[referral_id]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--store", type=Path, default=Path("partner-summaries.json"))
    args = parser.parse_args()
    store = json.loads(args.store.read_text()) if args.store.exists() else {}
    with httpx.Client(base_url=args.base_url, timeout=10) as client:
        sync(client, token(client, args.client_id, args.client_secret), store)
    args.store.write_text(json.dumps(store, indent=2))
    args.store.chmod(0o600)
    print(f"{len(store['summaries'])} summaries held; next sync from {store['synced_at']}")


if __name__ == "__main__":
    main()
