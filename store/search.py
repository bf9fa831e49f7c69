"""Search every run's steps (actions, observations) and notes through the FTS5 indexes
that migration m008 keeps. A person's words become a query of quoted prefixes, so any
text (quotes, `AND`, `*`, a colon) is searched for as written, never parsed as syntax."""

from __future__ import annotations

import sqlite_utils

HIT_LIMIT = 200
SNIPPET_TOKENS = 12


def words_of(text: str) -> list[str]:
    """The words a person typed, as the hits will highlight them."""
    return [word for word in text.split() if word.strip('"')]


def match_expression(text: str) -> str:
    """Every word must occur (as a word prefix); each is a quoted string, so FTS5 syntax
    in the text is taken literally."""
    return " ".join('"' + word.replace('"', '""') + '"*' for word in words_of(text))


def search_runs(db: sqlite_utils.Database, text: str, *, limit: int = HIT_LIMIT) -> list[dict]:
    """Hits across every run, newest run first: `kind` (action | observation | note), the
    step to open (`node_id`), its run, episode, task, depth, and a snippet of the text."""
    expression = match_expression(text)
    if not expression:
        return []
    hits: list[dict] = []
    for kind, column in (("action", 0), ("observation", 1)):
        hits += list(db.query(
            f"""select '{kind}' as kind, n.id as node_id, n.depth, e.id as episode_id, e.run_id,
                   r.name as run_name, t.name as task,
                   snippet(_search_nodes, {column}, '', '', '…', {SNIPPET_TOKENS}) as snippet
                from _search_nodes s join nodes n on n.id = s.rowid
                join episodes e on e.id = n.episode_id join runs r on r.id = e.run_id
                join tasks t on t.id = e.task_id
                where _search_nodes match ? order by e.run_id desc, n.id limit ?""",
            [f"{{{kind}}} : ({expression})", limit],
        ))
    hits += list(db.query(
        f"""select 'note' as kind, n.id as node_id, n.depth, e.id as episode_id, e.run_id,
               r.name as run_name, t.name as task,
               snippet(_search_notes, 0, '', '', '…', {SNIPPET_TOKENS}) as snippet
            from _search_notes s join notes on notes.id = s.rowid join nodes n on n.id = notes.node_id
            join episodes e on e.id = n.episode_id join runs r on r.id = e.run_id
            join tasks t on t.id = e.task_id
            where _search_notes match ? order by e.run_id desc, n.id limit ?""",
        [expression, limit],
    ))
    order = {"action": 0, "note": 1, "observation": 2}
    hits.sort(key=lambda hit: (-hit["run_id"], hit["episode_id"], hit["node_id"], order[hit["kind"]]))
    return hits[:limit]
