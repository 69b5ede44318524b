#!/usr/bin/env bash
# Install the agent CLIs that relay/tests/test_e2e_agents.py drives against the live gateway:
# Claude Code and the Codex CLI, pinned, into .cache/agents (git-ignored). Both npm packages
# ship their native binary in a platform package. Idempotent: does nothing when the pinned
# versions are already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PREFIX="$PWD/.cache/agents"
CLAUDE_VERSION="2.1.330"
CODEX_VERSION="0.169.0"

# Run the version checks with a scratch HOME so they leave nothing in the user's ~/.codex, ~/.claude.
scratch_home="$PREFIX/.home"
cli() { HOME="$scratch_home" CODEX_HOME="$scratch_home/.codex" "$PREFIX/node_modules/.bin/$1" --version 2>/dev/null; }

installed_version() {  # installed_version <package> -> version or nothing
  local manifest="$PREFIX/node_modules/$1/package.json"
  [ -f "$manifest" ] && node -p "require(process.argv[1]).version" "$manifest" 2>/dev/null || true
}

if [ "$(installed_version @anthropic-ai/claude-code)" = "$CLAUDE_VERSION" ] \
  && [ "$(installed_version @openai/codex)" = "$CODEX_VERSION" ] \
  && mkdir -p "$scratch_home/.codex" && cli claude >/dev/null && cli codex >/dev/null; then
  echo "install_agents: claude-code $CLAUDE_VERSION and codex $CODEX_VERSION already in $PREFIX"
  exit 0
fi

echo "install_agents: installing @anthropic-ai/claude-code@$CLAUDE_VERSION @openai/codex@$CODEX_VERSION into $PREFIX"
mkdir -p "$PREFIX"
npm install --no-audit --no-fund --loglevel=error --prefix "$PREFIX" \
  "@anthropic-ai/claude-code@$CLAUDE_VERSION" "@openai/codex@$CODEX_VERSION"
mkdir -p "$scratch_home/.codex"
echo "install_agents: installed $(cli claude) / $(cli codex)"
