"""The dashboard in a real browser, against the real stack: what a person does and sees."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.receiver import Receiver
from tests.support.stack import haul, submit, wait_status
from tests.support.waiting import wait_for

if TYPE_CHECKING:
    from tests.browser.conftest import Browser
    from tests.support.media_server import MediaServer
    from tests.support.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SLOW = "/slow/long.mp4?bps=60000"  # several seconds of download: the bar has time to move


def _badge(browser: Browser, job_id: str) -> str:
    return str(browser.find(f"#badge-{job_id}").text)


def _bar(browser: Browser, job_id: str) -> float:
    return float(browser.find(f"#progress-{job_id} progress").get_attribute("value") or 0)


def _newest_job_id(browser: Browser) -> str:
    return str(browser.find("#jobs li.job").get_attribute("id")).removeprefix("job-")


def test_submit_watch_progress_and_play_without_reload(
    browser: Browser, stack: Stack, media: MediaServer
) -> None:
    # Given a person signed in with their key
    browser.sign_in(stack.key)

    # When they paste a slow file's address and press Download
    browser.find("#url").send_keys(media.url(SLOW))
    browser.find("#preset").send_keys("best")
    browser.click("Download")
    job_id = browser.until("the new job in the list", lambda: _newest_job_id(browser))
    browser.mark()

    # Then its bar appears and advances, and its badge reaches succeeded, on the same page
    browser.until(
        "the download to start", lambda: browser.find(f"#phase-{job_id}").text == "downloading"
    )
    first = browser.until("the progress bar", lambda: _bar(browser, job_id) or None)
    browser.until("the progress bar to advance", lambda: _bar(browser, job_id) > first)
    browser.shoot("jobs-running")
    browser.until(
        "the badge to read succeeded",
        lambda: _badge(browser, job_id) == "succeeded",
        timeout=90,
    )
    assert browser.same_page(), "the page was reloaded"

    # And on the job's page the file plays: the player knows its length (seeking uses Range)
    browser.open(f"/jobs/{job_id}")
    duration = browser.until(
        "the player to load the file",
        lambda: browser.js("return document.getElementById('player').duration") or None,
    )
    assert duration == pytest.approx(30, abs=1)
    browser.js("const p = document.getElementById('player'); p.currentTime = 20;")
    browser.until(
        "the player to seek",
        lambda: browser.js("return document.getElementById('player').seeking") is False,
    )
    assert browser.js("return document.getElementById('player').currentTime") >= 19
    assert "download #1 · succeeded" in browser.text()
    # And its state changes are listed in order, from queued to succeeded
    statuses = browser.js(
        "return [...document.querySelectorAll('#history .badge')].map(b => b.textContent)"
    )
    assert statuses[0] == "queued", statuses
    assert statuses[-1] == "succeeded", statuses
    assert "running" in statuses, statuses
    browser.shoot("job")


def test_cancel_a_running_job(browser: Browser, stack: Stack, media: MediaServer) -> None:
    # Given a job downloading slowly, on the page of a signed-in person
    with stack.http() as http:
        job_id = submit(http, media.url(SLOW + "&cancel=1"))
        wait_status(http, job_id, {"running"})
    browser.sign_in(stack.key)
    browser.open(f"/jobs/{job_id}")

    # When they press Cancel
    browser.click("Cancel")

    # Then the job reads cancelled, and so does the API
    browser.until("the cancelled badge", lambda: _badge(browser, job_id) == "cancelled")
    with stack.http() as http:
        assert http.get(f"/v1/jobs/{job_id}").json()["status"] == "cancelled"


def test_retry_a_failed_group(browser: Browser, stack: Stack, media: MediaServer) -> None:
    # Given two jobs that failed the same way (the address answers 404)
    key = stack.create_key("retrier")
    with stack.http(key) as http:
        failed = [submit(http, media.url(f"/status/404?n={n}")) for n in range(2)]
        for job_id in failed:
            assert wait_status(http, job_id, {"failed"})["error"]["error_class"] == "http_404"
    browser.sign_in(key)

    # When they open the failed jobs and retry the http_404 group
    browser.open("/failed")
    assert "http_404 2" in browser.text()
    browser.shoot("failed")
    browser.click("Retry all http_404")

    # Then both are queued again and tried once more
    browser.until("the note", lambda: "Queued 2 jobs again." in browser.text())
    with stack.http(key) as http:
        for job_id in failed:
            job = wait_status(http, job_id, {"failed"})
            assert job["attempts"] >= 1
        outcomes = stack.query(
            "SELECT count(*) FROM job_attempts WHERE job_id::text = ANY(%s)", failed
        )
        assert outcomes[0][0] >= 4  # one probe attempt per run, two runs each


def test_find_a_job_by_a_word_of_its_address(
    browser: Browser, stack: Stack, media: MediaServer
) -> None:
    # Given a person with two jobs whose addresses differ
    key = stack.create_key("finder")
    with stack.http(key) as http:
        wanted = submit(http, media.url("/status/404?n=needle"))
        other = submit(http, media.url("/status/404?n=hay"))
    browser.sign_in(key)

    # When they type a word of one address into Find and press Filter
    browser.find("#q").send_keys("NEEDLE")
    browser.click("Filter")

    # Then only that job is listed, and the field keeps the word
    browser.until("the filtered list", lambda: _listed(browser) == [wanted])
    assert other not in _listed(browser)
    assert browser.find("#q").get_attribute("value") == "NEEDLE"


def _listed(browser: Browser) -> list[str]:
    ids: list[str] = browser.js(
        "return [...document.querySelectorAll('#jobs > li.job')].map(li => li.id.slice(4))"
    )
    return ids


def test_a_playlist_tree_fills_in(browser: Browser, stack: Stack, media: MediaServer) -> None:
    # Given a person signed in, looking at a feed they just submitted
    with stack.http() as http:
        parent = submit(http, media.url("/feed.rss"))
    browser.sign_in(stack.key)
    browser.open(f"/jobs/{parent}")

    # Then its entries appear under it and all end, and the parent succeeds, without a reload
    browser.mark()
    browser.until("three entries", lambda: len(browser.all(".tree li.job")) == 3, timeout=90)
    browser.until(
        "every entry to succeed",
        lambda: (
            all(b.text == "succeeded" for b in browser.all(".tree .badge"))
            and len(browser.all(".tree .badge")) == 3
        ),
        timeout=90,
    )
    browser.until("the parent to succeed", lambda: _badge(browser, parent) == "succeeded")
    assert "3 entries" in browser.text()
    assert browser.same_page()
    browser.shoot("playlist")


def test_an_admin_pauses_the_download_queue(
    browser: Browser, stack: Stack, media: MediaServer
) -> None:
    # Given an admin on the queues page
    admin, _ = stack.create_client("operator", "--admin")
    browser.sign_in(admin)
    browser.open("/ops/queues")

    # When they pause the download queue and a job arrives
    browser.click("Pause download")
    browser.until("the note", lambda: "download paused" in browser.text())
    with stack.http(admin) as http:
        job_id = submit(http, media.url("/media/a.mp4?held=1"))

    # Then, once probed, the job shows as held in their list (a hold is no state change,
    # so no live event announces it: the page is loaded again)
    def held() -> bool:
        browser.open("/jobs")
        return browser.until("the list", lambda: browser.find(f"#job-{job_id}").text, 10).count(
            "held: queue_paused"
        )

    try:
        wait_for(held, timeout=60, interval=0.5, what="the job to be held")
        browser.open("/ops/queues")
        assert "queue_paused: 1" in browser.find("#queue-download").text
        browser.shoot("queues")

        # When they resume it, the job runs to the end
        browser.click("Resume download")
        browser.until("the note", lambda: "download resumed" in browser.text())
        with stack.http(admin) as http:
            assert wait_status(http, job_id, {"succeeded", "failed"})["status"] == "succeeded"
    finally:
        with stack.http(admin) as http:  # the queue is the module's: never leave it paused
            http.post("/v1/queues/download/resume")


def test_set_the_webhook_endpoint_see_a_delivery_and_send_it_again(
    browser: Browser, stack: Stack, media: MediaServer
) -> None:
    # Given a person with no endpoint yet, and a receiver that trusts their secret
    key, secret = stack.create_client("hooked-by-hand")
    with Receiver() as hooks:
        hooks.trust(secret)
        browser.sign_in(key)
        browser.open("/webhooks")
        assert "No deliveries yet" in browser.text()

        # When they save the receiver as their endpoint on the webhooks page
        browser.find("#endpoint-url").send_keys(hooks.url("/hook"))
        browser.click("Save")
        browser.until("the note", lambda: "Endpoint saved" in browser.text())
        with stack.http(key) as http:
            assert http.get("/v1/webhook").json()["url"] == hooks.url("/hook")

            # and a job of theirs without a callback URL of its own ends
            job_id = submit(http, media.url("/media/a.mp4?hooked=1"))
            wait_status(http, job_id, {"succeeded"})
        wait_for(lambda: hooks.at("/hook"), timeout=60, what="the first delivery")

        # Then the page lists its delivery as delivered, with the receiver's answer
        def delivered() -> str | None:
            browser.open("/webhooks")
            row = str(browser.find("#deliveries tbody tr").text)
            return row if "delivered" in row else None

        first = wait_for(delivered, timeout=30, interval=0.5, what="the delivery to read delivered")
        assert "job.succeeded" in first
        assert "HTTP 204" in first
        browser.shoot("webhooks")

        # And Send again delivers the same event once more, under the same webhook-id
        browser.click("Send again")
        browser.until("the note", lambda: "will be sent again" in browser.text())
        got = wait_for(
            lambda: len(hooks.at("/hook")) == 2 and hooks.at("/hook"),
            timeout=60,
            what="the redelivery",
        )
        assert got[0].webhook_id == got[1].webhook_id
        assert all(r.verified_by == secret for r in got)


def test_subscribe_to_a_feed_see_its_entries_and_pause_it(
    browser: Browser, stack: Stack, media: MediaServer
) -> None:
    # Given a person on the subscriptions page
    key = stack.create_key("follower")
    browser.sign_in(key)
    browser.open("/subscriptions")
    assert "No subscriptions yet" in browser.text()

    # When they follow a feed, downloading its newest existing entry
    browser.find("#sub-url").send_keys(media.url("/feed.rss?sub=1"))
    browser.js("document.getElementById('sub-backfill').value = '1'")
    browser.click("Subscribe")

    # Then its page shows the first check's entries: one downloaded, two left before it
    browser.until("the note", lambda: "Subscribed" in browser.text())
    sub_id = browser.path().removeprefix("/subscriptions/")

    def entries() -> list[str] | None:
        browser.open(f"/subscriptions/{sub_id}")
        rows = [r.text for r in browser.all("#entries tbody tr")]
        return rows if len(rows) == 3 else None

    found = wait_for(entries, timeout=60, interval=0.5, what="the first check's three entries")
    assert sum("before_backfill" in r for r in found) == 2
    browser.shoot("subscription")

    # And the list shows it active; Pause pauses it, as the API agrees
    browser.open("/subscriptions")
    assert "active" in browser.find(f"#sub-{sub_id}").text
    browser.click("Pause")
    browser.until("the note", lambda: "Paused" in browser.text())
    assert "paused by you" in browser.find(f"#sub-{sub_id}").text
    browser.shoot("subscriptions")
    with stack.http(key) as http:
        assert http.get(f"/v1/subscriptions/{sub_id}").json()["paused"] is True


def test_operator_pages_do_not_exist_for_other_keys(browser: Browser, stack: Stack) -> None:
    # Given a person signed in with a key that is not an admin's
    browser.sign_in(stack.create_key("plain"))

    # Then the operator pages answer 404 and the menu does not offer them
    assert "Queues" not in browser.find("header").text
    with browser.session() as http:
        for path in ("/ops/queues", "/ops/sites", "/ops/clients"):
            assert http.get(path).status_code == 404, path
    browser.open("/ops/queues")
    assert "There is no such page" in browser.text()


def test_admin_creates_a_client_and_sees_its_key_once(browser: Browser, stack: Stack) -> None:
    # Given an admin on the clients page
    admin, _ = stack.create_client("boss", "--admin")
    browser.sign_in(admin)
    browser.open("/ops/clients")

    # When they create a client
    browser.find("#client-name").send_keys("newcomer")
    browser.click("Create")

    # Then its key is shown once and works
    key = browser.until("the new key", lambda: browser.find("code.secret").text)
    assert key.startswith("haul_")
    with stack.http(key) as http:
        assert http.get("/v1/jobs").status_code == 200
    browser.shoot("clients")
    browser.open("/ops/clients")
    assert key not in browser.driver.page_source

    # And a running cap an operator gives it on the command line shows with its other limits
    haul(stack.env, "clients", "limits", "newcomer", "--max-running", "3")
    browser.open("/ops/clients")
    (row,) = [r for r in browser.all("table tbody tr") if r.text.startswith("newcomer")]
    assert "running at once ≤ 3" in row.text


def test_a_form_without_its_token_is_refused(browser: Browser, stack: Stack) -> None:
    # Given a signed-in browser
    browser.sign_in(stack.key)
    with browser.session() as http:
        before = len(stack.query("SELECT 1 FROM jobs"))

        # When a form arrives with its cookies but without the page's token (a forged one)
        forged = http.post("/jobs", data={"url": "http://127.0.0.1:9/x.mp4"})
        wrong = http.post("/jobs", data={"url": "http://127.0.0.1:9/x.mp4", "_csrf": "x" * 43})

    # Then it is refused and nothing was created
    assert forged.status_code == 403
    assert wrong.status_code == 403
    assert len(stack.query("SELECT 1 FROM jobs")) == before


def test_the_session_cookie_opens_no_write_route_of_the_api(
    browser: Browser, stack: Stack, media: MediaServer
) -> None:
    # Given a signed-in browser's cookies, and a job of theirs that succeeded
    with stack.http() as http:
        job_id = submit(http, media.url("/media/b.mp4?cookie=1"))
        wait_status(http, job_id, {"succeeded"})
    browser.sign_in(stack.key)
    with browser.session() as http:
        # Then the file and the event streams take the cookie
        part = http.get(f"/v1/jobs/{job_id}/file", headers={"Range": "bytes=0-9"})
        assert (part.status_code, len(part.content)) == (206, 10)
        events = http.get(f"/v1/jobs/{job_id}/events")  # an ended job's stream ends at once
        assert events.status_code == 200
        assert '"status":"succeeded"' in events.text

        # And the JSON API's other routes do not
        assert http.post("/v1/jobs", json={"url": media.url("/media/a.mp4")}).status_code == 401
        assert http.post(f"/v1/jobs/{job_id}/retry").status_code == 401
        assert http.delete(f"/v1/jobs/{job_id}").status_code == 401
        assert http.get("/v1/jobs").status_code == 401


def test_sign_out_and_revoke_end_the_session(browser: Browser, stack: Stack) -> None:
    # Given a person signed in
    key = stack.create_key("leaver")
    browser.sign_in(key)

    # When they sign out, the session is over
    browser.click("Sign out", scope="header")
    browser.until("the sign-in page", lambda: browser.path() == "/signin")
    browser.open("/jobs")
    assert browser.path() == "/signin"

    # And when the key is revoked, a session made with it ends on its next request
    browser.sign_in(key)
    client_id = stack.query("SELECT id FROM clients WHERE name = 'leaver'")[0][0]
    haul(stack.env, "clients", "revoke", str(client_id))
    browser.open("/jobs")
    assert browser.path() == "/signin"


def test_the_key_is_never_shown_and_a_wrong_one_is_refused(browser: Browser, stack: Stack) -> None:
    # Given a person who types a wrong key
    browser.open("/signin")
    browser.shoot("signin")
    browser.find("#key").send_keys("haul_" + "x" * 43)
    browser.click("Sign in")

    # Then they stay on the sign-in page, told why (read once the answer has loaded:
    # until then the page is the form they typed in), and the key is not echoed
    browser.until("the refusal", lambda: "not valid" in browser.text(), timeout=20)
    assert browser.path().startswith("/signin")
    assert "x" * 43 not in browser.driver.page_source

    # And a right key signs in without appearing in the page or the address
    browser.sign_in(stack.key)
    assert stack.key not in browser.driver.page_source
    assert stack.key not in browser.driver.current_url
    assert stack.key not in stack.log("api")
