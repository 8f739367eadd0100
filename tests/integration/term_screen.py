#!/usr/bin/env python3
"""A small terminal for tests: replays what a program wrote to a pty and prints the lines
left on screen and in the scrollback. It knows what kiln's live view uses (CR, LF, cursor
up, erase line, erase below) and reports (TERM-ERROR lines) a line of the view wider than
the terminal (it would wrap and break the redraw) and a cursor moved above the top of the
screen (a frame taller than the terminal).
Usage: term_screen.py COLS ROWS < typescript"""
import re
import sys

cols, rows = int(sys.argv[1]), int(sys.argv[2])
text = sys.stdin.buffer.read().decode("utf-8", "replace")
lines = [""]
row = col = top = 0
errors = []


def newline():
    global row, top
    row += 1
    if row == len(lines):
        lines.append("")
    if row >= top + rows:
        top = row - rows + 1


csi = re.compile(r"\x1b\[([0-9;?]*)([@-~])")
i = 0
while i < len(text):
    c = text[i]
    if c == "\x1b":
        m = csi.match(text, i)
        if not m:
            errors.append("a stray ESC at %d" % i)
            i += 1
            continue
        arg, final = m.group(1), m.group(2)
        n = int(arg) if arg.isdigit() else 1
        if final == "A":
            if row - n < top:
                errors.append("cursor up %d from row %d goes above the screen" % (n, row - top))
            row = max(top, row - n)
        elif final == "K":
            lines[row] = lines[row][:col]
        elif final == "J":
            lines[row] = lines[row][:col]
            del lines[row + 1:]
        i = m.end()
        continue
    i += 1
    if c == "\r":
        col = 0
    elif c == "\n":
        newline()
    elif c >= " ":
        if col >= cols:
            # other output (warnings, the error) wraps, as on a real terminal
            if lines[row].startswith((" => ", "[+] ")):
                errors.append("a line of the view is wider than %d columns: %r" % (cols, lines[row]))
            newline()
            col = 0
        line = lines[row].ljust(col)
        lines[row] = line[:col] + c + line[col + 1:]
        col += 1
for l in lines:
    print(l.rstrip())
for e in errors[:5]:
    print("TERM-ERROR: " + e)
