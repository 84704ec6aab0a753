# Copyright (c) mmseg-spixreg contributors. All rights reserved.
"""The documentation's references resolve: relative links, ``#anchors`` and repository paths.

Checked files: README.md, CHANGELOG.md, docs/*.md, experiments/README.md and every README.md
under configs/ and mmseg_spixreg/. A failure lists every problem as ``file:line: what is wrong``.

* Links: every markdown link / image ``[text](target)`` and HTML ``href`` / ``src`` outside code
  blocks that is not a URL must name an existing file (relative to the document); a ``#anchor``
  must be a heading of the target document (GitHub's heading ids).
* Paths: every repository path named in the text or in code blocks (a token starting with one
  of the repository's top-level folders, e.g. ``configs/...``, ``experiments/...``) must exist,
  relative to the repository root or to the document; braces expand (``{a,b}``) and ``*`` globs
  must match.
  Paths under ``data/`` and ``work_dirs/`` are made by documented commands: they are accepted
  only under a prefix of ``PRODUCED`` below, which names the command producing it.
"""
import glob
import itertools
import os.path as osp
import re
import unicodedata

import pytest

from tests.utils import REPO_ROOT

DOC_GLOBS = ('README.md', 'CHANGELOG.md', 'docs/*.md', 'experiments/README.md',
             'configs/**/README.md', 'mmseg_spixreg/**/README.md')

# Paths that exist only after a documented command ran: prefix -> the command making it (its
# script must exist in the repository; see test_produced_paths_name_existing_commands).
PRODUCED = {
    'data/camvid/':
    'python tools/dataset_converters/link_camvid.py CAMVID_ROOT (docs/data.md)',
    'data/camvid_coarse/':
    'python tools/dataset_converters/make_coarse_labels.py data/camvid/trainannot '
    'data/camvid_coarse/n12/trainannot --erode 12 --ignore-index 11 255',
    'data/camvid_pack':
    'python experiments/pack_camvid.py data/camvid data/camvid_pack',
    'data/suim':
    'python tools/dataset_converters/suim.py SUIM_ROOT data/suim',
    'data/cityscapes_1024x512':
    'python tools/dataset_converters/cityscapes_coarse.py CITYSCAPES_ROOT '
    'data/cityscapes_1024x512',
    'work_dirs/':
    'python tools/train.py CONFIG (work_dirs/<config name>/, mmseg\'s default), '
    'experiments/run_experiment.py --work-dir, tools/demo.py, experiments/gpu_campaign.py',
}

# The repository's top-level folders a path can start with (plus the produced ones and .dev,
# a folder that does not exist: a doc naming it is wrong).
TOP_LEVEL = ('benchmarks', 'configs', 'data', 'demo', 'docs', 'experiments', 'mmseg_spixreg',
             'requirements', 'tests', 'tools', 'work_dirs', '.dev')
PATH_RE = re.compile(r'(?<![\w./-])((?:' + '|'.join(re.escape(t)
                                                    for t in TOP_LEVEL) + r')/[\w./*{},-]*[\w*}/])')
LINK_RE = re.compile(r'!?\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)')
HTML_RE = re.compile(r'(?:href|src)="([^"]+)"')
HEADING_RE = re.compile(r'^(#{1,6})\s+(.*?)\s*#*\s*$')


def doc_files():
    files = set()
    for pattern in DOC_GLOBS:
        files.update(glob.glob(osp.join(REPO_ROOT, pattern), recursive=True))
    return sorted(osp.relpath(f, REPO_ROOT) for f in files)


def doc_lines(path):
    """(line number, text, inside a fenced code block) of a markdown file."""
    fenced = False
    with open(osp.join(REPO_ROOT, path), encoding='utf-8') as f:
        for number, line in enumerate(f, 1):
            if line.lstrip().startswith(('```', '~~~')):
                fenced = not fenced
                yield number, line, True
                continue
            yield number, line, fenced


def github_anchor(heading):
    """GitHub's id of a heading: markup removed, lower case, punctuation dropped, spaces -> -."""
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', heading)  # links keep their text
    text = text.replace('`', '').strip().lower()
    text = ''.join(c for c in text
                   if c in ' -_' or unicodedata.category(c)[0] in 'LN')  # letters, digits
    return text.replace(' ', '-')


def anchors(path):
    """All heading ids of a markdown file (duplicates numbered -1, -2, ... as on GitHub)."""
    seen = {}
    result = set()
    for _, line, fenced in doc_lines(path):
        m = HEADING_RE.match(line) if not fenced else None
        if m:
            base = github_anchor(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            result.add(base if n == 0 else f'{base}-{n}')
    return result


def expand_braces(token):
    m = re.search(r'\{([^{}]*)\}', token)
    if not m:
        return [token]
    return list(
        itertools.chain.from_iterable(
            expand_braces(token[:m.start()] + part + token[m.end():])
            for part in m.group(1).split(',')))


def check_link(doc, target):
    """Problem with a relative link (None if it resolves)."""
    if re.match(r'^[a-z][a-z0-9+.-]*:', target):  # http:, https:, mailto:
        return None
    path, _, anchor = target.partition('#')
    resolved = osp.normpath(osp.join(osp.dirname(doc), path)) if path else doc
    if not osp.exists(osp.join(REPO_ROOT, resolved)):
        return f'link target {target!r} does not exist ({resolved})'
    if anchor:
        if not resolved.endswith('.md'):
            return f'link {target!r}: an #anchor into a file that is not markdown'
        if anchor not in anchors(resolved):
            return (f'link {target!r}: no heading with id #{anchor} in {resolved} '
                    f'(its ids: {", ".join(sorted(anchors(resolved)))})')
    return None


def check_path(doc, token):
    """Problem with a repository path named in a doc (None if it exists or is produced)."""
    token = token.rstrip('.,/').split('::')[0]
    for prefix in PRODUCED:
        if token == prefix.rstrip('/') or token.startswith(prefix):
            return None
    for candidate in expand_braces(token):
        found = False
        for base in (REPO_ROOT, osp.join(REPO_ROOT, osp.dirname(doc))):
            full = osp.join(base, candidate)
            if glob.glob(full) if '*' in candidate else osp.exists(full):
                found = True
                break
        if not found:
            return (f'path {candidate!r} does not exist in the repository (nor relative to '
                    f'{doc}); if a documented command makes it, add its prefix and command to '
                    'PRODUCED in tests/test_docs.py')
    return None


def problems_of(doc):
    problems = []
    for number, line, fenced in doc_lines(doc):
        if not fenced:
            for target in LINK_RE.findall(line) + HTML_RE.findall(line):
                problem = check_link(doc, target)
                if problem:
                    problems.append(f'{doc}:{number}: {problem}')
        # link targets are checked above (relative to the doc); the rest of the line for paths
        text = LINK_RE.sub('', line) if not fenced else line
        for token in PATH_RE.findall(text):
            problem = check_path(doc, token)
            if problem:
                problems.append(f'{doc}:{number}: {problem}')
    return problems


def test_docs_are_found():
    docs = doc_files()
    for required in ('README.md', 'docs/design.md', 'configs/README.md',
                     'configs/original/README.md', 'mmseg_spixreg/models/README.md'):
        assert required in docs


@pytest.mark.parametrize('doc', doc_files())
def test_links_anchors_and_paths_resolve(doc):
    problems = problems_of(doc)
    assert not problems, 'broken references:\n' + '\n'.join(problems)


def test_produced_paths_name_existing_commands():
    for prefix, command in PRODUCED.items():
        scripts = re.findall(r'(?:tools|experiments)/[\w/]+\.py', command)
        assert scripts, f'{prefix}: no producing command named'
        for script in scripts:
            assert osp.isfile(osp.join(REPO_ROOT, script)), f'{prefix}: {script} does not exist'


def test_the_checker_finds_broken_references(tmp_path, monkeypatch):
    """The checks themselves: a broken link, a missing anchor, a missing path and an unlisted
    produced path are reported with file and line; valid ones are not."""
    import tests.test_docs as mod
    root = tmp_path
    (root / 'docs').mkdir()
    (root / 'tools').mkdir()
    (root / 'tools' / 'real.py').write_text('')
    (root / 'docs' / 'b.md').write_text('# Title: `x`, y >= 2.6\n\n## Twice\n\n## Twice\n')
    (root / 'README.md').write_text(
        '[ok](docs/b.md#title-x-y--26) [ok2](docs/b.md#twice-1) [bad](docs/nope.md)\n'
        '[bad anchor](docs/b.md#nowhere) `tools/real.py` `tools/missing.py`\n'
        '```bash\npython tools/gone.py work_dirs/x/best.pth data/camvid/val .dev/env.sh\n```\n')
    monkeypatch.setattr(mod, 'REPO_ROOT', str(root))
    problems = mod.problems_of('README.md')
    assert len(problems) == 5, problems
    assert problems[0].startswith('README.md:1: link target ') and 'nope.md' in problems[0]
    assert problems[1].startswith('README.md:2: link ') and '#nowhere' in problems[1]
    assert problems[2].startswith('README.md:2: path ') and 'tools/missing.py' in problems[2]
    assert problems[3].startswith('README.md:4: path ') and 'tools/gone.py' in problems[3]
    assert problems[4].startswith('README.md:4: path ') and '.dev/env.sh' in problems[4]


def test_no_issue_numbers_outside_the_changelog():
    """History belongs in CHANGELOG.md: code, tests, configs and docs name no issue numbers."""
    pattern = re.compile(r'\bissues? #?\d+', re.I)
    files = [f for f in doc_files() if f != 'CHANGELOG.md']
    for folder in ('mmseg_spixreg', 'tools', 'tests', 'configs', 'benchmarks', 'demo',
                   'experiments'):
        for ext in ('py', 'sh'):
            files += [
                osp.relpath(p, REPO_ROOT)
                for p in glob.glob(osp.join(REPO_ROOT, folder, '**', '*.' + ext), recursive=True)
            ]
    found = []
    for path in sorted(files):
        with open(osp.join(REPO_ROOT, path), encoding='utf-8') as f:
            for number, line in enumerate(f, 1):
                if pattern.search(line) and path != 'tests/test_docs.py':
                    found.append(f'{path}:{number}: {line.strip()}')
    assert not found, 'issue numbers (move the history to CHANGELOG.md):\n' + '\n'.join(found)
