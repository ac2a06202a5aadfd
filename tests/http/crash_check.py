#!/usr/bin/python3
"""crash_check.py DB DIGESTS LOG... — t_crash.sh's invariants, checked on the
database after kill -9s and restarts, against the clients' logs.

Log lines (each written only after the answer named came back, except the
"d"/"t" intents, written before their request is sent):
  U N HEX   upload acknowledged (201) as version N with digest HEX
  d N       a delete of version N was sent      D N   ... and acknowledged (200)
  t V       a move of the tag was sent          T V   ... and acknowledged

Invariants (model 'm'; next = models.next_version, P = version numbers in the
database, A = acknowledged upload numbers, Dsent / Dack = deletes sent / acked):
  1. PRAGMA integrity_check is "ok" and foreign_key_check is empty.
  2. No number was acknowledged twice (numbers are never reused).
  3. Every n in A and not in Dsent is in P, with the acknowledged digest.
  4. No n in Dack is in P.
  5. P and A lie within 1..next-1 (next only grows).
  6. Every n in 1..next-1 missing from P is in Dsent: the only gaps are deletes
     (a killed upload either committed its number or did not take one).
  7. Every row's digest is one of the uploaded files' (DIGESTS) and has a
     blobs row; (strata verify then re-hashes the files).
Exit 0 with a one-line summary, else 1 with the first problems.
"""
import sqlite3
import sys

db_path, digests_path, logs = sys.argv[1], sys.argv[2], sys.argv[3:]
known = set(open(digests_path).read().split())
acked, dsent, dack = {}, set(), set()
problems = []
for path in logs:
    for line in open(path):
        f = line.split()
        if not f:
            continue
        if f[0] == "U" and len(f) == 3:
            n = int(f[1])
            if n in acked:
                problems.append(f"version {n} acknowledged twice ({acked[n][:12]}…, {f[2][:12]}…)")
            acked[n] = f[2]
        elif f[0] == "d":
            dsent.add(int(f[1]))
        elif f[0] == "D":
            dack.add(int(f[1]))

con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
ic = [r[0] for r in con.execute("PRAGMA integrity_check")]
if ic != ["ok"]:
    problems.append(f"integrity_check: {ic[:3]}")
fk = con.execute("PRAGMA foreign_key_check").fetchall()
if fk:
    problems.append(f"foreign_key_check: {fk[:3]}")
row = con.execute("SELECT id, next_version FROM models WHERE name = 'm'").fetchone()
if not row:
    print("model 'm' is missing")
    sys.exit(1)
mid, nxt = row
present = dict(con.execute("SELECT number, digest FROM versions WHERE model_id = ?", (mid,)).fetchall())
blobs = {r[0] for r in con.execute("SELECT digest FROM blobs")}

for n, d in sorted(acked.items()):
    if n in dsent:
        continue
    if n not in present:
        problems.append(f"acknowledged version {n} is gone")
    elif present[n] != d:
        problems.append(f"version {n} has digest {present[n][:12]}…, acknowledged {d[:12]}…")
for n in sorted(dack & present.keys()):
    problems.append(f"version {n} is back after an acknowledged delete")
for n in sorted(set(present) | set(acked)):
    if not 1 <= n < nxt:
        problems.append(f"version {n} outside 1..{nxt - 1} (next_version {nxt})")
gaps = [n for n in range(1, nxt) if n not in present and n not in dsent]
if gaps:
    problems.append(f"numbers missing without a delete: {gaps[:10]}")
for n, d in sorted(present.items()):
    if d not in known:
        problems.append(f"version {n}: digest {d[:12]}… is none of the uploaded files")
    if d not in blobs:
        problems.append(f"version {n}: no blobs row for {d[:12]}…")

if problems:
    print("; ".join(problems[:8]) + (f" (+{len(problems) - 8} more)" if len(problems) > 8 else ""))
    sys.exit(1)
unacked = len(set(present) - set(acked))
print(f"ok: next_version {nxt}, {len(present)} versions, {len(acked)} acknowledged, "
      f"{len(dack)} deletes acknowledged, {unacked} committed but unacknowledged")
