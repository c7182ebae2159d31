#!/usr/bin/env bash
# Extract LOL our485 (the 485 training pairs) into data/lol-train/{low,high} from a local copy of the git history
# of the public repository named in ../shared/data/README.md. Only the images are taken; data/ is git-ignored.
# Usage: scripts/prepare_lol_train.sh /path/to/that/repository.git
set -euo pipefail
GIT_DIR=${1:?"usage: $0 <git directory of the repository that holds dataset/train>"}
COMMIT=6206c92fbd0130c3d56f653f7f012549a56a4c55
cd "$(dirname "$0")/.."
rm -rf data/lol-train && mkdir -p data/lol-train
git --git-dir="$GIT_DIR" archive "$COMMIT" dataset/train | tar -x -C data/lol-train --strip-components=2
mv data/lol-train/normal data/lol-train/high
echo "$(ls data/lol-train/low | wc -l) low and $(ls data/lol-train/high | wc -l) high images in data/lol-train"
