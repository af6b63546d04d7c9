"""Makes train_draft.py's corpus from the Debian `fortunes` package and fortunes-min, which it depends on and which holds
its `fortunes` file (apt must reach a Debian mirror):
    python3 tools/train-draft/make_corpus.py OUT.json.xz
Every fortune of every file (entries between '%' lines) as {"category": file name, "text": fortune}."""
import json
import lzma
import os
import subprocess
import sys
import tempfile

with tempfile.TemporaryDirectory() as d:
    subprocess.run(["apt-get", "download", "fortunes", "fortunes-min"], cwd=d, check=True, capture_output=True)
    for deb in sorted(f for f in os.listdir(d) if f.endswith(".deb")):
        subprocess.run(["dpkg-deb", "-x", deb, "x"], cwd=d, check=True)
    root = os.path.join(d, "x", "usr", "share", "games", "fortunes")
    corpus = []
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name)
        if name.endswith((".dat", ".u8")) or os.path.islink(path):
            continue
        with open(path, encoding="utf-8", errors="replace") as f:
            for entry in f.read().split("\n%\n"):
                entry = entry.strip("\n")
                if entry.strip():
                    corpus.append({"category": name, "text": entry})
with lzma.open(sys.argv[1], "wt", encoding="utf-8") as f:
    json.dump(corpus, f)
print(f"{len(corpus)} fortunes -> {sys.argv[1]}")
