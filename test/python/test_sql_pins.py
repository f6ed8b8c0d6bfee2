#!/usr/bin/env python3
"""Every (text, label) pair that the PostgreSQL suites pin must be transformers' answer.

The expected outputs (expected/*.out) pin labels of the reference classifier
(../shared/reference/hf-trained-classifier). A pinned label is only a test if it is right, so
each one must equal the text transformers generated for that comment in
hf_predictions_dev.json; a label computed in the same run by a visible reference (compared in
SQL, printed as a boolean) is not a pin and needs no entry.

Pairs are found in the result tables of expected/*.out:
  - a row with a text column (its name contains "body") and label cells;
  - a label cell of a column defined in the statement as classify_hate[_scores](<literal>)
    ... AS <column>, or the only classify_hate[_scores](<literal>) of the statement;
  - an array of labels (any bounds, any dimensions) paired element by element with the
    statement's ARRAY[...] or '{...}' literal.
A label cell that none of these explains is a failure (an unverifiable pin), and so is a label
compared with a literal in sql/*.sql (write such a check against a reference instead).
Final line "test_sql_pins: N passed, M failed" (one check per pin, plus one per unexplained
label)."""
import glob
import json
import os
import re

from tally import Tally

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("GC_SHARED") or os.path.join(ROOT, "..", "shared")
LABELS = ("Not Hate", "Hate", "Extreme Hate")
TALLY = Tally("test_sql_pins")
check = TALLY.check


def sql_literal(s):
    """The value of a SQL string literal ('...' or E'...'), doubled quotes undone."""
    if s.startswith(("E'", "e'")):
        return bytes(s[2:-1].replace("''", "'"), "utf-8").decode("unicode_escape")
    return s[1:-1].replace("''", "'")


LIT = r"(?:[Ee]?'(?:[^']|'')*')"


def array_elements(lit):
    """Elements of ARRAY[...] (nested) or of a '{...}' / '[0:1]={...}' array literal."""
    if lit.upper().startswith("ARRAY"):
        return [None if t.upper() == "NULL" else sql_literal(t)
                for t in re.findall(LIT + r"|NULL", lit[5:], flags=re.I)]
    return pg_array(sql_literal(lit))


def pg_array(text):
    """Elements of a PostgreSQL array's text form (dimensions and bounds dropped)."""
    text = re.sub(r"^\[[0-9:\]\[]+\]=", "", text.strip())
    out = []
    for q, bare in re.findall(r'"((?:[^"\\]|\\.)*)"|([^{},]+)', text):
        if q or not bare:
            out.append(re.sub(r"\\(.)", r"\1", q))
        else:
            out.append(None if bare.strip() == "NULL" else bare.strip())
    return out


def is_label_array(cell):
    return bool(re.match(r"^(\[[0-9:\]\[]+\]=)?\{.*\}$", cell)) and \
        any(x in LABELS for x in pg_array(cell))


def statements(path):
    """(line number of the table, statement text, header, rows as lists of cells) for each result
    table of a .out file."""
    lines = open(path, encoding="utf-8").read().split("\n")
    stmt, i = [], 0
    while i < len(lines):
        line = lines[i]
        if i + 1 < len(lines) and re.match(r"^-+(\+-+)*$", lines[i + 1]) and stmt:
            header = [c.strip() for c in line.split("|")]
            rows, j = [], i + 2
            while j < len(lines) and not re.match(r"^\(\d+ rows?\)$", lines[j]):
                rows.append([c.strip() for c in lines[j].split("|")])
                j += 1
            yield i + 1, "\n".join(stmt), header, rows
            stmt, i = [], j + 1
            continue
        if line.strip() == "" or re.match(r"^(ERROR|NOTICE|DETAIL|HINT|WARNING|CONTEXT):", line):
            stmt = []
        else:
            stmt.append(line)
        i += 1


def column_sources(stmt):
    """{column name: literal} for classify_hate[_scores](<literal or ARRAY>) ... AS column."""
    flat = stmt.replace("\n", " ")
    out = {}
    arg = r"(ARRAY\s*\[.*?\]\]?|" + LIT + r")"
    for m in re.finditer(r"classify_hate(?:_scores)?\(\s*" + arg + r"(?:::text\[\])?\s*\)"
                         r"[^,;]*?\bAS\s+(\w+)", flat, flags=re.I):
        out[m.group(2)] = m.group(1)
    return out


def call_literals(stmt):
    flat = stmt.replace("\n", " ").replace("''", "'")
    arg = r"(ARRAY\s*\[.*?\]\]?|" + LIT + r")"
    return sorted(set(re.findall(r"classify_hate(?:_scores)?\(\s*" + arg, flat, flags=re.I)))


def main():
    path = os.path.join(SHARED, "reference", "hf-trained-classifier", "hf_predictions_dev.json")
    if not check(os.path.isfile(path), "%s not found (set GC_SHARED)" % path):
        return
    ref = {p["text"]: p["generated"] for p in json.load(open(path, encoding="utf-8"))["predictions"]}
    pins = []  # (where, text, label)

    def unexplained(where, cell):
        check(False, "%s: label %r pinned without a text it can be checked against" % (where, cell))

    for out in sorted(glob.glob(os.path.join(ROOT, "expected", "*.out"))):
        name = os.path.basename(out)
        for line, stmt, header, rows in statements(out):
            where = "%s:%d" % (name, line)
            body = [k for k, h in enumerate(header) if "body" in h.lower()]
            sources = column_sources(stmt)
            calls = call_literals(stmt)
            for row in rows:
                for k, cell in enumerate(row):
                    if cell in LABELS:
                        col = header[k] if k < len(header) else ""
                        if body and body[0] < len(row) and row[body[0]]:
                            pins.append((where, row[body[0]], cell))
                        elif col in sources and not sources[col].upper().startswith("ARRAY"):
                            pins.append((where, sql_literal(sources[col]), cell))
                        elif len(calls) == 1 and not calls[0].upper().startswith("ARRAY"):
                            pins.append((where, sql_literal(calls[0]), cell))
                        else:
                            unexplained(where, cell)
                    elif is_label_array(cell):
                        col = header[k] if k < len(header) else ""
                        lit = sources.get(col) or (calls[0] if len(calls) == 1 else None)
                        texts = array_elements(lit) if lit else []
                        labels = pg_array(cell)
                        if not lit and sorted(labels) == sorted(LABELS):
                            continue  # the set of labels (e.g. the keys of the scores), no pin
                        if len(texts) != len(labels):
                            unexplained(where, cell)
                            continue
                        for t, lab in zip(texts, labels):
                            check((t is None) == (lab is None),
                                  "%s: NULL text and label do not line up in %r" % (where, cell))
                            if t is not None:
                                pins.append((where, t, lab))
    # labels compared with a literal in the SQL scripts are pins nobody can see in an output
    for sql in sorted(glob.glob(os.path.join(ROOT, "sql", "*.sql"))):
        text = open(sql, encoding="utf-8").read()
        alt = "|".join(LABELS)
        for m in re.finditer(r"(?:=|<>|!=)\s*'(%s)'|'(%s)'\s*(?:=|<>|!=)" % (alt, alt), text):
            unexplained("%s:%d" % (os.path.basename(sql), text[:m.start()].count("\n") + 1),
                        m.group(1) or m.group(2))
        for m in re.finditer(r"\bIN\s*\(([^()]*)\)", text, flags=re.I):
            found = set(re.findall(r"'(%s)'" % alt, m.group(1)))
            if found and found != set(LABELS):
                unexplained("%s:%d" % (os.path.basename(sql), text[:m.start()].count("\n") + 1),
                            m.group(0))
    distinct = sorted(set((t, lab) for _, t, lab in pins))
    for where, t, lab in pins:
        check(t in ref, "%s: %r is not a dev comment of hf_predictions_dev.json: its label %r has "
                        "no reference" % (where, t, lab))
        if t in ref:
            check(ref[t] == lab, "%s: %r pinned as %r, transformers generated %r" % (where, t, lab, ref[t]))
    print("%d pins (%d distinct text/label pairs) in expected/*.out checked against %s" %
          (len(pins), len(distinct), path))
    for t, lab in distinct:
        print("  %-24r %s" % (t, lab))
    check(len(pins) >= 20, "only %d pins found: is the parser still reading expected/*.out?" % len(pins))


if __name__ == "__main__":
    try:
        main()
    except Exception as e:  # a crash must count as a failure
        import traceback
        traceback.print_exc()
        check(False, "exception: %r" % e)
    TALLY.finish()
