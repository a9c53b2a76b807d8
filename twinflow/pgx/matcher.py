"""PharmCAT's named-allele matching (``NamedAlleleMatcher``), re-implemented for one sample.

The semantics follow PharmCAT's documentation (Named Allele Matcher 101/201, Gene Definition
Exceptions) and source (``haplotype/MatchData``, ``DiplotypeMatcher``, ``NamedAlleleMatcher``,
``DpydHapB3Matcher``, ``CombinationUtil``, ``util/HaplotypeNameComparator``); no code is
copied.  Per gene:

1. **Sample alleles.** The sample's two alleles at every allele-defining position, in the
   definition's VCF representation (:func:`sample_alleles`).  A position without a record, or
   with a missing allele (``./.``, ``0/.``), is *missing*.  An allele the definitions do not
   know stays as it is (no named allele can match it -> no call) -- except for DPYD, NUDT15
   and TPMT, where PharmCAT reads undocumented alleles as reference.
2. **Named alleles on the available positions.** Missing positions are dropped from every
   definition; an allele left without a defined position cannot be matched and is dropped.
   Undefined positions of an allele are then filled from the reference allele ("assume
   reference").  An allele's *score* is its number of defined (available) positions, so the
   reference allele scores highest.
3. **Strands.** Phased or homozygous positions keep their orientation; unphased
   heterozygous positions may go either way (PharmCAT lists all 2^n strands; here the
   equivalent is solved position by position, so many heterozygous positions cost nothing).
4. **Matches and diplotypes.** A named allele matches a strand when every position agrees
   (IUPAC codes match any of their bases).  Diplotypes are pairs of matches whose strands
   are complementary at every position (homozygous: same allele, heterozygous: different).
   Diplotype score = sum of the two allele scores (a wobble position matched by the reference
   base does not count).  Only the top-scoring diplotype(s) are reported (PharmCAT's default
   *top candidate* rule); none -> ``Unknown/Unknown``.
5. **DPYD** (:func:`call_dpyd`): phased or *effectively phased* data (at most two possible
   strands) -> one diplotype whose strands list every variant found on them
   (``[c.85T>C (*9A) + c.1627A>G (*5)]``, ``Reference`` for a strand without variants);
   otherwise the list of variants found (``(homozygous)`` when on both strands).  HapB3 is
   called from the intronic rs75017182 (the exonic rs56038477 only when the intronic one is
   missing).  The phenotype uses the lowest-activity variant per strand (phased) or the two
   lowest-activity variants (unphased).
"""

from __future__ import annotations

import functools
import itertools
import re
from dataclasses import dataclass, field
from typing import Iterable

from twinflow.pgx.definitions import GeneDefinition, NamedAllele

__all__ = [
    "MAX_PERMUTATIONS",
    "DiplotypeMatch",
    "GeneMatch",
    "SampleAllele",
    "call_dpyd",
    "combination_name",
    "compare_names",
    "diplotype_name",
    "match_gene",
    "sort_names",
]

#: :func:`permutations` (used only for DPYD's effectively phased data, at most two strands)
#: refuses to list more strands than this.
MAX_PERMUTATIONS = 2 ** 15

#: Genes whose undocumented alleles PharmCAT reads as reference (Named Allele Matcher 101).
UNDOCUMENTED_AS_REFERENCE = frozenset({"CACNA1S", "DPYD", "G6PD", "NUDT15", "RYR1", "TPMT"})

IUPAC: dict[str, frozenset[str]] = {
    "R": frozenset("AG"), "Y": frozenset("CT"), "S": frozenset("CG"), "W": frozenset("AT"),
    "K": frozenset("GT"), "M": frozenset("AC"), "B": frozenset("CGT"), "D": frozenset("AGT"),
    "H": frozenset("ACT"), "V": frozenset("ACG"), "N": frozenset("ACGT"),
}

HAPB3 = "c.1129-5923C>G, c.1236G>A (HapB3)"
HAPB3_EXONIC = "rs56038477"
HAPB3_INTRONIC = "rs75017182"


def is_wobble(value: str | None) -> bool:
    return value is not None and len(value) == 1 and value in IUPAC


def allele_matches(defined: str | None, sample: str | None) -> bool:
    if defined is None:
        return True
    if sample is None:
        return False
    if is_wobble(defined):
        return sample in IUPAC[defined]
    return defined == sample


# --------------------------------------------------------------------------- names


_HGVS = re.compile(r"(?:.*:)?[cgnmopr]\.(\d+).*")
_STAR = re.compile(r"^\*(\d+)(.*)$")
_TOKENS = re.compile(r"(\d+)")


def _natural(name: str) -> tuple:
    return tuple((0, int(t), "") if t.isdigit() else (1, 0, t) for t in _TOKENS.split(name) if t)


def _plain_compare(a: str, b: str) -> int:
    ma, mb = _STAR.match(a), _STAR.match(b)
    if ma and mb:
        ka = (int(ma.group(1)), ma.group(2))
        kb = (int(mb.group(1)), mb.group(2))
    else:
        ka, kb = _natural(a), _natural(b)
    if ka != kb:
        return -1 if ka < kb else 1
    return (a > b) - (a < b)


def is_combination(name: str) -> bool:
    return name.startswith("[") and name.endswith("]")


def components(name: str) -> list[str]:
    return name[1:-1].split(" + ") if is_combination(name) else [name]


def compare_names(a: str, b: str) -> int:
    """PharmCAT's haplotype-name order: plain names before combinations, fewer components
    first, HGVS names by coding position, star alleles numerically."""
    if a == b:
        return 0
    ca, cb = is_combination(a), is_combination(b)
    if ca != cb:
        return 1 if ca else -1
    if ca:
        pa, pb = components(a), components(b)
        if len(pa) != len(pb):
            return -1 if len(pa) < len(pb) else 1
        a, b = pa[0], pb[0]
        if a == b:
            return _plain_compare(" + ".join(pa), " + ".join(pb))
    ha, hb = _HGVS.fullmatch(a), _HGVS.fullmatch(b)
    if ha and hb:
        xa, xb = int(ha.group(1)), int(hb.group(1))
        if xa != xb:
            return -1 if xa < xb else 1
        return (a > b) - (a < b)
    return _plain_compare(a, b)


def sort_names(names: Iterable[str]) -> list[str]:
    return sorted(names, key=functools.cmp_to_key(compare_names))


def combination_name(names: Iterable[str]) -> str:
    parts = sort_names(names)
    return parts[0] if len(parts) == 1 else "[" + " + ".join(parts) + "]"


def diplotype_name(a: str, b: str) -> str:
    x, y = sort_names([a, b])
    return f"{x}/{y}"


# --------------------------------------------------------------------------- sample data


@dataclass(frozen=True)
class SampleAllele:
    """The sample's alleles at one position (definition representation; None = missing)."""

    position: int
    allele1: str | None
    allele2: str | None
    phased: bool

    @property
    def effectively_phased(self) -> bool:
        return self.phased or self.allele1 == self.allele2


def permutations(alleles: list[SampleAllele]) -> list[tuple[str | None, ...]]:
    """Every strand the genotypes allow (``CombinationUtil.generatePermutations``)."""
    s1_blank = all(a.allele1 is None for a in alleles)
    s2_blank = all(a.allele2 is None for a in alleles)
    n_free = sum(1 for a in alleles if not a.effectively_phased)
    if 2 ** n_free > MAX_PERMUTATIONS:
        raise OverflowError(f"{n_free} unphased heterozygous positions")
    out: set[tuple] = set()
    for first, haploid in ((True, s2_blank), (False, s1_blank)):
        if (first and s1_blank) or (not first and s2_blank):
            continue
        seqs: list[tuple] = [()]
        for sa in alleles:
            if sa.effectively_phased or haploid:
                a = sa.allele1 if first else sa.allele2
                seqs = [s + (a,) for s in seqs]
            else:
                seqs = [s + (a,) for s in seqs for a in (sa.allele1, sa.allele2)]
        out.update(seqs)
    return sorted(out, key=lambda s: tuple("" if x is None else x for x in s))


# --------------------------------------------------------------------------- matching


@dataclass
class Haplotype:
    """A named allele restricted to the available positions."""

    name: str
    reference: bool
    alleles: tuple[str | None, ...]     # per available position (after reference filling)
    defined: tuple[bool, ...]           # position named by the original definition
    wobble: tuple[bool, ...]
    score: int

    def matches(self, seq: tuple) -> bool:
        return all(allele_matches(d, s) for d, s in zip(self.alleles, seq))

    def score_for(self, seq: tuple, refs: tuple[str, ...]) -> int:
        """Score minus wobble positions that the sequence fills with the reference base."""
        return self.score - sum(1 for w, s, r in zip(self.wobble, seq, refs) if w and s == r)


@dataclass
class DiplotypeMatch:
    hap1: str
    hap2: str
    score: int
    name: str = ""

    def __post_init__(self) -> None:
        self.name = diplotype_name(self.hap1, self.hap2)


@dataclass
class GeneMatch:
    """Result of :func:`match_gene` (inputs to the call record)."""

    gene: str
    positions: list[int]                 # available (called) positions
    missing: list[int]                   # allele-defining positions without data
    diplotypes: list[DiplotypeMatch]     # top candidates, best first ([] = Unknown/Unknown)
    all_diplotypes: list[DiplotypeMatch]
    haplotype_matches: list[str]         # named alleles matching at least one strand
    phased: bool
    effectively_phased: bool
    n_permutations: int
    unmatchable: list[str]               # alleles whose every defining position is missing
    novel: list[int] = field(default_factory=list)   # positions with an undocumented allele
    notes: list[str] = field(default_factory=list)


def restrict(defn: GeneDefinition, positions: list[int], missing: list[int], *,
             assume_reference: bool = True, skip: Iterable[str] = ()) -> tuple[list[Haplotype], list[str]]:
    """Named alleles on the available positions (``MatchData.marshallHaplotypes`` and
    ``defaultMissingAllelesToReference``); returns (haplotypes, alleles dropped)."""
    skip = set(skip)
    ref = defn.reference
    refs = tuple(defn.variant(p).ref for p in positions)
    haps, dropped = [], []
    restricted = bool(missing) or len(positions) < len(defn.positions)
    for na in defn.named_alleles:
        if na.name in skip:
            continue
        vals = [na.alleles.get(p) for p in positions]
        defined = tuple(v is not None for v in vals)
        score = sum(defined)
        if restricted and score == 0:
            dropped.append(na.name)
            continue
        if assume_reference and not na.reference:
            vals = [v if v is not None else (r if is_wobble(ref.alleles.get(p)) else ref.alleles.get(p))
                    for v, p, r in zip(vals, positions, refs)]
        haps.append(Haplotype(na.name, na.reference, tuple(vals), defined,
                              tuple(d and is_wobble(v) for d, v in zip(defined, vals)), score))
    return haps, dropped


def n_permutations(alleles: list[SampleAllele]) -> int:
    """Number of distinct strands PharmCAT enumerates (``CombinationUtil.generatePermutations``)."""
    unphased = sum(1 for a in alleles if not a.effectively_phased)
    phased_het = any(a.phased and a.allele1 != a.allele2 for a in alleles)
    return (2 if phased_het else 1) * 2 ** unphased


@dataclass
class _Fit:
    """How a haplotype fits the sample: per heterozygous position, which allele(s) it takes."""

    het: list[frozenset[int]]          # per position in ``het_index``: {0}, {1} or {0, 1}
    chains: frozenset[int]             # strands (0 = allele1, 1 = allele2) it fits at phased hets


def _fit(h: Haplotype, alleles: list[SampleAllele]) -> _Fit | None:
    het: list[frozenset[int]] = []
    chains = {0, 1}
    for d, sa in zip(h.alleles, alleles):
        if sa.allele1 is None or sa.allele2 is None:
            return None                                  # partial genotype: no diplotype (PharmCAT)
        if sa.allele1 == sa.allele2:
            if not allele_matches(d, sa.allele1):
                return None
            continue
        c = frozenset(k for k, a in enumerate((sa.allele1, sa.allele2)) if allele_matches(d, a))
        if not c:
            return None
        if sa.phased:
            chains &= c
            if not chains:
                return None
        het.append(c)
    return _Fit(het, frozenset(chains))


def diplotypes(haps: list[Haplotype], alleles: list[SampleAllele],
               refs: tuple[str, ...]) -> tuple[list[DiplotypeMatch], list[str]]:
    """All diplotypes the genotypes allow, best score first (``DiplotypeMatcher.compute``).

    Equivalent to PharmCAT's enumeration of strands and complementary pairs, but solved per
    position: two haplotypes pair when, at every heterozygous position, they can take different
    alleles (and opposite strands at phased heterozygous positions)."""
    het_pos = [i for i, sa in enumerate(alleles) if sa.allele1 != sa.allele2]
    phased_het = [i for i in het_pos if alleles[i].phased]
    fits = [(h, f) for h in haps if (f := _fit(h, alleles)) is not None]
    names = sort_names(h.name for h, _ in fits)
    out: list[DiplotypeMatch] = []

    def wobble_bonus(h: Haplotype, i: int, k: int) -> int:
        sa = alleles[i]
        return int(h.wobble[i] and (sa.allele1, sa.allele2)[k] != refs[i])

    def base(h: Haplotype) -> int:
        return h.score - sum(1 for i, (w, r) in enumerate(zip(h.wobble, refs))
                             if w and i not in het_pos and alleles[i].allele1 == r)

    for x in range(len(fits)):
        for y in range(x, len(fits)):
            (h1, f1), (h2, f2) = fits[x], fits[y]
            if phased_het and not any(k1 != k2 for k1 in f1.chains for k2 in f2.chains):
                continue
            score = base(h1) + base(h2)
            ok = True
            for k, i in enumerate(het_pos):
                if alleles[i].phased:
                    opts = [(c1, 1 - c1) for c1 in (0, 1) if c1 in f1.chains and 1 - c1 in f2.chains]
                else:
                    opts = [(c1, c2) for c1 in f1.het[k] for c2 in f2.het[k] if c1 != c2]
                if not opts:
                    ok = False
                    break
                score += max(wobble_bonus(h1, i, c1) + wobble_bonus(h2, i, c2) - int(h1.wobble[i])
                             - int(h2.wobble[i]) for c1, c2 in opts)
            if ok:
                out.append(DiplotypeMatch(h1.name, h2.name, score))
    key = functools.cmp_to_key(lambda p, q: (q.score - p.score) or compare_names(p.name, q.name))
    return sorted(out, key=key), names


def _prepare(defn: GeneDefinition, sample: dict[int, SampleAllele], skip_positions: Iterable[int] = ()):
    skip_positions = set(skip_positions)
    positions = [p for p in defn.positions if p in sample and p not in skip_positions]
    missing = [p for p in defn.positions if p not in sample]
    alleles = [sample[p] for p in positions]
    return positions, missing, alleles


def match_gene(defn: GeneDefinition, sample: dict[int, SampleAllele], *, top_candidate: bool = True) -> GeneMatch:
    """PharmCAT's ``callAssumingReference`` for one gene (every gene but DPYD)."""
    positions, missing, alleles = _prepare(defn, sample)
    phased = bool(alleles) and all(a.phased for a in alleles)
    haps, dropped = restrict(defn, positions, missing)
    if not alleles:
        return GeneMatch(defn.gene, [], missing, [], [], [], False, False, 0, dropped)
    n_perm = n_permutations(alleles)
    refs = tuple(defn.variant(p).ref for p in positions)
    dips, names = diplotypes(haps, alleles, refs)
    top = [d for d in dips if d.score == dips[0].score] if (dips and top_candidate) else dips
    return GeneMatch(defn.gene, positions, missing, top, dips, names, phased, n_perm <= 2, n_perm, dropped)


# --------------------------------------------------------------------------- DPYD


@dataclass
class DpydResult:
    match: GeneMatch
    diplotype: tuple[list[str], list[str]] | None   # phased: component names per strand
    haplotypes: list[str]                             # unphased: variant alleles found (with copies)
    hapb3_copies: int
    notes: list[str]


def _hapb3_call(defn: GeneDefinition, sample: dict[int, SampleAllele]) -> tuple[list[int] | None, list[str]]:
    """Per-strand HapB3 presence (1/0) from the intronic SNP, else the exonic one."""
    hap = defn.allele(HAPB3)
    pos = {v.rsid: v.position for v in defn.variants}
    intron, exon = sample.get(pos[HAPB3_INTRONIC]), sample.get(pos[HAPB3_EXONIC])
    notes: list[str] = []
    if intron is None and exon is None:
        return None, notes

    def strands(sa: SampleAllele, p: int) -> list[int]:
        want = hap.alleles[p]
        return [int(a == want) for a in (sa.allele1, sa.allele2) if a is not None]

    if intron is not None:
        call = strands(intron, pos[HAPB3_INTRONIC])
        if exon is not None and len(call) == 2:
            ex = strands(exon, pos[HAPB3_EXONIC])
            if (1 not in call and 1 in ex) or (1 in call and (len(ex) != 2 or sum(ex) != sum(call))):
                notes.append("DPYD HapB3: the exonic rs56038477 does not agree with the intronic "
                             "rs75017182; HapB3 is called from the intronic variant (PharmCAT's rule)")
        return call, notes
    notes.append("DPYD HapB3 called from the exonic rs56038477 only: the intronic rs75017182 is "
                 "missing and should be genotyped to confirm HapB3 (PharmCAT's rule)")
    return strands(exon, pos[HAPB3_EXONIC]), notes


def call_dpyd(defn: GeneDefinition, sample: dict[int, SampleAllele]) -> DpydResult:
    """PharmCAT's DPYD algorithm (see module doc)."""
    hap_pos = {v.position for v in defn.variants if v.rsid in (HAPB3_EXONIC, HAPB3_INTRONIC)}
    all_pos, missing, all_alleles = _prepare(defn, sample)
    if not all_alleles:
        gm = GeneMatch(defn.gene, [], missing, [], [], [], False, False, 0,
                       [a.name for a in defn.named_alleles])
        return DpydResult(gm, None, [], 0, [])
    n_all = n_permutations(all_alleles)
    eff_phased = n_all <= 2
    phased = all(a.phased for a in all_alleles)
    hapb3, notes = _hapb3_call(defn, sample)
    positions, _, alleles = _prepare(defn, sample, hap_pos)
    haps, dropped = restrict(defn, positions, missing, assume_reference=False,
                             skip=(HAPB3, "c.1129-5923C>G"))
    variants = [h for h in haps if not h.reference]
    n_hapb3 = sum(hapb3) if hapb3 and len(hapb3) == 2 else 0
    gm = GeneMatch(defn.gene, all_pos, missing, [], [], [], phased, eff_phased, n_all, dropped)

    def on_strand(strand: tuple) -> list[str]:
        return [h.name for h in variants if h.matches(strand)]

    if eff_phased:
        if alleles:
            strands = permutations(alleles)
            if len(strands) == 1:
                strands = strands * 2
            else:
                # keep the VCF orientation: strand 1 carries allele1 at phased positions
                first = tuple(a.allele1 for a in alleles)
                second = tuple(a.allele2 for a in alleles)
                strands = [first, second] if first in strands and second in strands else strands
        else:
            strands = [(), ()]
        comp = [on_strand(s) for s in strands[:2]]
        if hapb3 and len(hapb3) == 2:
            for k in (0, 1):
                if hapb3[k]:
                    comp[k].append(HAPB3)
        names = [combination_name(c) if c else "Reference" for c in comp]
        d = DiplotypeMatch(names[0], names[1], 0)
        gm.diplotypes = gm.all_diplotypes = [d]
        gm.haplotype_matches = sort_names(set(itertools.chain(*comp)))
        return DpydResult(gm, (comp[0], comp[1]), [], n_hapb3, notes)

    reference = next(h for h in haps if h.reference)
    ref_matches = _fit(reference, alleles) is not None
    found: list[str] = []
    for h in variants:
        if _fit(h, alleles) is not None:
            homo = all(alleles[i].allele1 == alleles[i].allele2 for i, d in enumerate(h.defined) if d)
            found.extend([h.name] * (2 if homo else 1))
    # PharmCAT keeps "Reference" only when it is one of at most two matches (HapB3 included)
    if ref_matches and len(set(found)) + 1 + n_hapb3 <= 2:
        found.append("Reference")
    found = sort_names(found) + [HAPB3] * n_hapb3
    gm.haplotype_matches = sort_names(set(found))
    return DpydResult(gm, None, found, n_hapb3, notes)


def summarize_alleles(found: list[str]) -> list[str]:
    """``a, a, b`` -> ``a (homozygous), b`` (PharmCAT's unphased DPYD listing)."""
    out = []
    for name in sort_names(set(found)):
        out.append(f"{name} (homozygous)" if found.count(name) > 1 else name)
    return out
