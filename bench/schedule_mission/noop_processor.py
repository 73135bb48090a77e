"""A no-op processor for bench/schedule.py: read the Job Order, write the planned outputs, exit 0.

Standard library only (it is started with ``python3 -S``), so what the benchmark measures
is the orchestration around a processor, not the processor.

    python3 -S noop_processor.py JOB_ORDER.xml
"""

import os
import sys
import xml.etree.ElementTree as ET


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: noop_processor.py JOB_ORDER.xml", file=sys.stderr)
        return 129
    try:
        root = ET.parse(argv[0]).getroot()
    except (OSError, ET.ParseError) as exc:
        print(f"unreadable Job Order {argv[0]}: {exc}", file=sys.stderr)
        return 129
    written = 0
    for output in root.iter("Output"):
        name = (output.findtext("File_Name") or "").strip()
        if not name:
            print("an Output without File_Name", file=sys.stderr)
            return 129
        parent = os.path.dirname(name)
        if parent:
            os.makedirs(parent, exist_ok=True)
        with open(name, "w") as out:
            out.write(f"no-op output of type {(output.findtext('File_Type') or '').strip()}\n")
        written += 1
    print(f"noop: wrote {written} output(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
