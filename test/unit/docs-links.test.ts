/**
 * The documentation's own promises: every relative link in README.md and
 * docs/*.md resolves (the file exists and, for `#anchor`, a heading has that
 * GitHub anchor), the README stays short, and nothing cites a file outside
 * the repository.
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const DOCS = [join(ROOT, "README.md"), ...readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md")).map((f) => join(ROOT, "docs", f))];

/** The text outside fenced code blocks and inline code spans. */
export function prose(markdown: string): string {
  let inFence = false;
  const out: string[] = [];
  for (const line of markdown.split("\n")) {
    if (/^\s*(```|~~~)/.test(line)) {
      inFence = !inFence;
      out.push("");
      continue;
    }
    out.push(inFence ? "" : line.replace(/`[^`]*`/g, "``"));
  }
  return out.join("\n");
}

/** Link targets: inline `[text](target)` and reference definitions `[name]: target`. */
export function linkTargets(markdown: string): string[] {
  const text = prose(markdown);
  const targets: string[] = [];
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) targets.push(m[1] as string);
  for (const m of text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)) targets.push(m[1] as string);
  return targets;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/`/g, "")
    .replace(/[^\p{L}\p{N}\s_-]/gu, "")
    .replace(/\s/g, "-");
}

/** Every anchor a markdown file offers (duplicates get -1, -2, ... as on GitHub). */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const line of prose(markdown.replace(/`([^`]*)`/g, "$1")).split("\n")) {
    const m = /^#{1,6}\s+(.+?)\s*#*\s*$/.exec(line);
    if (!m) continue;
    const base = slug(m[1] as string);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

function brokenLinks(file: string): string[] {
  const markdown = readFileSync(file, "utf8");
  const broken: string[] = [];
  for (const target of linkTargets(markdown)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
    const [path = "", anchor] = target.split("#", 2) as [string, string | undefined];
    const to = path === "" ? file : resolve(dirname(file), decodeURIComponent(path));
    if (!to.startsWith(`${ROOT}/`) && to !== ROOT) {
      broken.push(`${target}: outside the repository`);
      continue;
    }
    if (!existsSync(to)) {
      broken.push(`${target}: no such file`);
      continue;
    }
    if (anchor !== undefined && anchor !== "") {
      if (!to.endsWith(".md") || statSync(to).isDirectory()) {
        broken.push(`${target}: an anchor into a file that is not markdown`);
        continue;
      }
      if (!anchors(readFileSync(to, "utf8")).has(anchor)) broken.push(`${target}: no heading with that anchor in ${relative(ROOT, to)}`);
    }
  }
  return broken;
}

describe("the documentation", () => {
  it("finds links, skips code, and makes GitHub's anchors (the checker itself)", () => {
    const md = "# The NAT lab\n## `wormhole status`\n## Which pairs connect, and how\n## x\n## x\n[a](docs/a.md#b) `[c](d)`\n```\n[e](f)\n```\n[g]: ../h.md\n";
    assert.deepEqual(linkTargets(md), ["docs/a.md#b", "../h.md"]);
    assert.deepEqual([...anchors(md)], ["the-nat-lab", "wormhole-status", "which-pairs-connect-and-how", "x", "x-1"]);
  });

  for (const file of DOCS) {
    it(`${relative(ROOT, file)}: every relative link resolves`, () => {
      assert.deepEqual(brokenLinks(file), []);
    });
  }

  it("README.md is at most 200 lines", () => {
    const lines = readFileSync(join(ROOT, "README.md"), "utf8").split("\n").length - 1;
    assert.ok(lines <= 200, `README.md has ${lines} lines`);
  });

  it("every Markdown file a document or source file names by path is in the repository", () => {
    const files = [...DOCS, join(ROOT, "BENCHMARKS.md")];
    const walk = (dir: string) => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (/\.(ts|mjs|md|toml|service)$/.test(e.name)) files.push(p);
      }
    };
    for (const dir of ["src", "test", "deploy", "scripts", "bench", "fuzz"]) if (existsSync(join(ROOT, dir))) walk(join(ROOT, dir));
    const missing: string[] = [];
    // This file's own examples of links are not references.
    for (const f of files.filter((f) => f !== fileURLToPath(import.meta.url))) {
      for (const m of readFileSync(f, "utf8").matchAll(/(?:\.\.\/)*[\w-]+(?:\/[\w.-]+)*\/[\w.-]+\.md\b/g)) {
        const path = m[0];
        const inRepo = (p: string) => !relative(ROOT, p).startsWith("..") && existsSync(p);
        if (!inRepo(resolve(ROOT, path)) && !inRepo(resolve(dirname(f), path))) missing.push(`${relative(ROOT, f)}: ${path}`);
      }
    }
    assert.deepEqual(missing, []);
  });

});
