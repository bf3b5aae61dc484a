"""FakeJira judged by a widely used client library we did not write: Python's `jira` package.

Run by crates/testkit/tests/jira_client_library.rs against a running FakeJira over HTTPS; the CA
is trusted through REQUESTS_CA_BUNDLE. Prints one `PASS <check>` or `FAIL <check>: <why>` line
per check, then `N passed, N failed`. When it needs the fake changed it prints `ASK <action>` and
waits for a line on stdin.

Usage: check_fake_jira.py URL EMAIL API_TOKEN PROJECT_KEY
"""

import sys
import time

from jira import JIRA, JIRAError

# Status changes made to push the first one out of the newest 100 that expand=changelog embeds.
TRANSITIONS = 105
EMBEDDED_PAGE = 100
PAGE_SIZE = 40

results = {"passed": 0, "failed": 0}


def check(name, condition, why=""):
    """Reports one check; `condition` is a bool or a callable returning (bool, why)."""
    try:
        if callable(condition):
            condition, why = condition()
    except Exception as error:  # a library error is a failed check, not a crash
        condition, why = False, f"{type(error).__name__}: {error}"
    if condition:
        results["passed"] += 1
        print(f"PASS {name}", flush=True)
    else:
        results["failed"] += 1
        print(f"FAIL {name}: {why}", flush=True)
    return condition


def ask(action):
    """Asks the Rust test to change the fake; returns its answer."""
    print(f"ASK {action}", flush=True)
    return sys.stdin.readline().strip()


def check_site(jira, project):
    info = jira.server_info()
    check("server-info", info.get("deploymentType") == "Cloud", f"got {info}")
    me = jira.myself()
    check("myself", bool(me.get("accountId")), f"got {me}")
    fields = jira.fields()
    summary = [f for f in fields if f.get("id") == "summary"]
    check(
        "fields",
        bool(summary) and "summary" in summary[0].get("clauseNames", []),
        f"no summary field with its clause name in {len(fields)} fields",
    )
    statuses = [s.name for s in jira.statuses()]
    check("statuses", "Approved" in statuses, f"got {statuses}")
    types = [t.name for t in jira.issue_types()]
    check("issue-types", "Task" in types, f"got {types}")
    check("project", jira.project(project).key == project, "wrong project")


def create_issue(jira, project, label):
    issue = jira.create_issue(
        project=project,
        summary="Access request from the Python client",
        description="Requested by alice\nfor role editor",
        issuetype="Task",
        labels=[label],
    )
    check("create-issue", issue.key.startswith(project + "-"), f"got key {issue.key}")
    read = jira.issue(issue.key)
    check("read-issue", read.fields.summary == issue.fields.summary, "summary differs")
    return issue


def check_comments(jira, issue):
    comment = jira.add_comment(issue, "reason: looks fine")
    check("add-comment", comment.body == "reason: looks fine", f"got {comment.body!r}")
    bodies = [c.body for c in jira.comments(issue)]
    check("list-comments", bodies == ["reason: looks fine"], f"got {bodies}")


def check_transitions(jira, issue):
    names = {t["name"]: t["id"] for t in jira.transitions(issue)}
    check("list-transitions", "Approve" in names, f"got {list(names)}")
    jira.transition_issue(issue, "Approve")
    status = jira.issue(issue.key).fields.status.name
    check("transition-by-name", status == "Approved", f"status is {status}")
    # Back and forth by id, as on a busy board, until the approval is out of the embedded page.
    # Jira's workflow transitions here are global, so their ids hold in every status.
    reopen = jira.find_transitionid_by_name(issue, "Reopen")
    for n in range(TRANSITIONS - 1):
        jira.transition_issue(issue, str(reopen if n % 2 == 0 else names["Approve"]))
    status = jira.issue(issue.key).fields.status.name
    check("transition-by-id", status == "Approved", f"status is {status}")


def check_embedded_changelog(jira, issue):
    changelog = jira.issue(issue.key, expand="changelog").changelog
    histories = changelog.histories
    ids = [int(h.id) for h in histories]
    check(
        "changelog/embedded-newest-100",
        len(histories) == EMBEDDED_PAGE and changelog.total == TRANSITIONS,
        f"{len(histories)} histories, total {changelog.total}",
    )
    check("changelog/embedded-newest-first", ids == sorted(ids, reverse=True), f"ids {ids[:5]}")
    newest = histories[0].items[0]
    check(
        "changelog/embedded-newest-is-last-change",
        newest.field == "status" and newest.toString == "Approved" and newest.fromString == "Pending",
        f"newest item {newest.field} -> {newest.toString}",
    )


def changelog_pages(jira, key):
    values, start, pages = [], 0, 0
    while True:
        page = jira._get_json(
            f"issue/{key}/changelog", params={"startAt": start, "maxResults": PAGE_SIZE}
        )
        values.extend(page["values"])
        pages += 1
        if page["isLast"] or pages > 10:
            return values, page, pages
        start += len(page["values"])


def check_paged_changelog(jira, issue):
    values, last, pages = changelog_pages(jira, issue.key)
    ids = [int(v["id"]) for v in values]
    check(
        "changelog/paged-all",
        len(values) == last["total"] == TRANSITIONS and pages == 3,
        f"{len(values)} values in {pages} pages, total {last['total']}",
    )
    check("changelog/paged-oldest-first", ids == sorted(ids), f"ids {ids[:5]}")
    first = values[0]["items"][0]
    check(
        "changelog/paged-finds-the-approval",
        first["field"] == "status" and first["toString"] == "Approved",
        f"oldest item {first}",
    )


def check_search(jira, label, key):
    found = jira.enhanced_search_issues(f'labels = "{label}"', fields="summary,status")
    keys = [i.key for i in found]
    check("search-jql", keys == [key], f"got {keys}")


def check_rate_limit(jira):
    answer = ask("rate-limit")
    if not check("rate-limit/set", answer == "ok", f"answer {answer!r}"):
        return
    started = time.monotonic()
    jira.myself()
    jira.myself()  # refused with 429 and Retry-After; the library waits and retries
    waited = time.monotonic() - started
    check("rate-limit/retried-after-waiting", waited >= 1.0, f"took {waited:.2f}s")
    ask("rate-limit-off")


def check_delete(jira, issue):
    issue.delete()
    try:
        jira.issue(issue.key)
        check("delete-issue", False, "the issue is still readable")
    except JIRAError as error:
        check("delete-issue", error.status_code == 404, f"status {error.status_code}")


def check_errors(jira, project):
    try:
        jira.issue(f"{project}-99999")
        check("errors/not-found", False, "no error")
    except JIRAError as error:
        check(
            "errors/not-found",
            error.status_code == 404 and "does not exist" in (error.text or ""),
            f"status {error.status_code}, text {error.text!r}",
        )


def main():
    url, email, token, project = sys.argv[1:5]
    jira = JIRA(url, basic_auth=(email, token), options={"check_update": False}, max_retries=3)
    label = "teleport-python-client"
    check_site(jira, project)
    issue = create_issue(jira, project, label)
    check_comments(jira, issue)
    check_transitions(jira, issue)
    check_embedded_changelog(jira, issue)
    check_paged_changelog(jira, issue)
    check_search(jira, label, issue.key)
    check_rate_limit(jira)
    check_delete(jira, issue)
    check_errors(jira, project)
    print(f"{results['passed']} passed, {results['failed']} failed", flush=True)
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as error:
        print(f"FAIL run: {type(error).__name__}: {error}", flush=True)
        print(f"{results['passed']} passed, {results['failed'] + 1} failed", flush=True)
        sys.exit(1)
