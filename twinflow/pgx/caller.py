"""Diplotype and phenotype calling from a normalised germline variant table.

Two matchers (``matcher=``):

* ``"pharmcat"`` (default): PharmCAT's named-allele matching and CPIC phenotypes for CYP2C9,
  CYP2C19, CYP3A5, DPYD, NUDT15, SLCO1B1, TPMT, UGT1A1 and VKORC1 (:mod:`twinflow.pgx.pharmcat`,
  :mod:`twinflow.pgx.matcher`, allele definitions in :mod:`twinflow.pgx.definitions`).  CYP2D6,
  which PharmCAT only takes from outside callers, is called by the legacy method below.
* ``"legacy"``: the method below for every gene (pypgx tables), kept for comparison.

Legacy method.  Input is the table of :func:`twinflow.io.variants.read_variants` (one row per sample x ALT,
minimal REF/ALT, ``alt_dosage`` NA for a no-call).  Allele definitions come from
:mod:`twinflow.pgx.tables` (pypgx's GRCh38 tables).  Method, per gene:

1. **Observation.**  Each allele-defining variant (minimal key, pypgx synonyms mapped) is
   looked up in the table.  A row with the same key gives its dosage (NA -> no-call).
   Otherwise a record whose REF span covers the variant (e.g. a gVCF ``<*>`` record, or a
   multi-allelic record with other ALTs) gives dosage 0 when genotyped and a no-call when
   ``./.``; the tightest such record is used.  A variant with neither is *missing*.  Missing
   and no-call positions are never read as reference unless ``missing_as_reference=True``.
2. **Haplotypes.**  Heterozygous records are placed on either chromosome; phased (``|``)
   genotypes keep their orientation, unphased ones are enumerated (2^(n-1) placements).
3. **Allele per haplotype** (pypgx's rule, :func:`pypgx.predict_alleles`): candidates are
   the alleles whose core variants are all on the haplotype; candidates whose core is a
   subset of another candidate's are dropped; the first by priority (function: no function
   first ... normal last; then more core variants; then more protein-coding variants; then
   non-reference) is called.  With missing positions only the *observed* part of a core is
   required; an allele whose core is entirely missing cannot be called ("untested"), and
   alleles that differ only at missing positions are all reported (ambiguous).
4. **Phenotype**: activity score (sum of the two alleles' scores, mapped by the gene's
   equation table) for CYP2C9, CYP2D6 and DPYD; the diplotype table otherwise.  Several
   diplotypes with different phenotypes give ``Indeterminate`` with the candidates --
   except DPYD, where CPIC (Amstutz et al. 2018) assumes unphased decreased-function
   variants to be in trans, i.e. the lowest activity score among the candidates.
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from twinflow.io.variants import read_variants
from twinflow.pgx.definitions import PHARMCAT_GENES
from twinflow.pgx.definitions import source_info as pharmcat_source_info
from twinflow.pgx.pharmcat import call_gene_pharmcat, record_index
from twinflow.pgx.tables import (
    GENES,
    GeneDefinition,
    VariantKey,
    load_gene,
    phenotype_from_score,
    source_info,
    variant_key,
)

__all__ = ["MATCHERS", "MAX_UNPHASED_HETS", "call_gene", "call_genes", "call_vcf", "observe"]

#: Accepted values of ``matcher``.
MATCHERS = ("pharmcat", "legacy")

#: Above this many unphased heterozygous defining records in one gene the placements are
#: not enumerated (2^(n-1) would explode); the gene is then reported as ambiguous.
MAX_UNPHASED_HETS = 14

SV_NOTE = ("copy-number alleles (gene deletions, duplications) and hybrid genes are not visible "
           "in a VCF of SNVs and indels; they are not called here: {alleles}")


def _fmt_key(k: VariantKey) -> str:
    return f"{k[0]}:{k[1]} {k[2]}>{k[3]}"


def _pos_label(k: VariantKey) -> str:
    return f"{k[0]}:{k[1]}"


def allele_sort_key(name: str) -> tuple:
    """pypgx's 'by name' order: Reference, then *N numerically, then c.N, then the rest."""
    if name == "Reference":
        return (0, 0, name)
    m = re.match(r"^\*(\d+)(.*)$", name)
    if m:
        return (1, int(m.group(1)), m.group(2))
    m = re.match(r"^c\.(\d+)", name)
    if m:
        return (2, int(m.group(1)), name)
    return (3, 0, name)


def _diplotype(a: str, b: str) -> str:
    x, y = sorted((a, b), key=allele_sort_key)
    return f"{x}/{y}"


# --------------------------------------------------------------------------- observation


@dataclass
class Observation:
    dosage: dict[VariantKey, int | None]          # every defining key -> 0/1/2 or None
    units: list[tuple[tuple[VariantKey | None, ...], bool]]  # per record: per-copy keys, phased
    missing: list[VariantKey]                     # not covered by any record
    no_call: list[VariantKey]                     # covered, but genotype missing
    filtered: list[VariantKey]                    # non-reference calls with a failed FILTER


def _records(df: pd.DataFrame):
    """Group rows by VCF record; per chrom a list sorted by orig_pos."""
    by_chrom: dict[str, list[dict[str, Any]]] = {}
    if len(df) == 0:
        return by_chrom
    cols = ["chrom", "pos", "ref", "alt", "gt", "alt_index", "alt_dosage", "zygosity", "phased",
            "orig_pos", "orig_ref", "orig_alts", "filter"]
    sub = df[cols]
    groups: dict[tuple, dict[str, Any]] = {}
    for row in sub.itertuples(index=False):
        rk = (row.chrom, int(row.orig_pos), row.orig_ref, row.orig_alts)
        rec = groups.get(rk)
        if rec is None:
            rec = {"chrom": row.chrom, "orig_pos": int(row.orig_pos), "orig_ref": row.orig_ref,
                   "end": int(row.orig_pos) + len(row.orig_ref) - 1, "gt": row.gt,
                   "zygosity": row.zygosity, "phased": bool(row.phased), "filter": row.filter,
                   "alts": {}}
            groups[rk] = rec
        if int(row.alt_index) > 0:
            dos = None if pd.isna(row.alt_dosage) else int(row.alt_dosage)
            rec["alts"][int(row.alt_index)] = (row.chrom, int(row.pos), row.ref, row.alt, dos)
    for rec in groups.values():
        by_chrom.setdefault(rec["chrom"], []).append(rec)
    for recs in by_chrom.values():
        recs.sort(key=lambda r: (r["orig_pos"], len(r["orig_ref"])))
    return by_chrom


def observe(df: pd.DataFrame, defn: GeneDefinition, *, missing_as_reference: bool = False,
            _records_cache: dict | None = None) -> Observation:
    """Dosage of every allele-defining variant of ``defn`` in table ``df`` (see module doc)."""
    by_chrom = _records_cache if _records_cache is not None else _records(df)
    keys = defn.defining_keys()
    wanted = set(keys)

    def canon(k: VariantKey) -> VariantKey:
        return defn.synonyms.get(k, k)

    dosage: dict[VariantKey, int | None] = {}
    units: list[tuple[tuple[VariantKey | None, ...], bool]] = []
    missing: list[VariantKey] = []
    no_call: list[VariantKey] = []
    filtered: list[VariantKey] = []
    exact: dict[VariantKey, list[tuple[dict, int | None]]] = {}
    chroms = {k[0] for k in keys}
    for chrom in chroms:
        for rec in by_chrom.get(chrom, []):
            rec_keys: dict[int, VariantKey] = {}
            for idx, (c, p, r, a, dos) in rec["alts"].items():
                if a.startswith("<") or a in ("*", "."):
                    continue
                k = canon(variant_key(c, p, r, a))
                if k in wanted:
                    rec_keys[idx] = k
                    exact.setdefault(k, []).append((rec, dos))
            if rec_keys and rec["zygosity"] not in ("no_call", "hom_ref"):
                alleles = re.split(r"[/|]", rec["gt"])
                copy_keys = tuple(rec_keys.get(int(x)) if x.isdigit() else None for x in alleles)
                if any(k is not None for k in copy_keys):
                    units.append((copy_keys, rec["phased"]))
                    if rec["filter"] not in ("PASS", "."):
                        filtered += [k for k in copy_keys if k is not None]
    for k in keys:
        hits = exact.get(k)
        if hits:
            doses = [d for _, d in hits if d is not None]
            dosage[k] = max(doses) if doses else None
            if not doses:
                no_call.append(k)
            continue
        chrom, pos, ref, _ = k
        end = pos + len(ref) - 1
        recs = by_chrom.get(chrom, [])
        starts = [r["orig_pos"] for r in recs]
        hi = bisect.bisect_right(starts, pos)
        cover = [r for r in recs[max(0, hi - 200):hi] if r["end"] >= end]
        if cover:
            best = max(cover, key=lambda r: (r["orig_pos"], -len(r["orig_ref"])))
            if best["zygosity"] == "no_call":
                dosage[k] = None
                no_call.append(k)
            else:
                dosage[k] = 0
        else:
            dosage[k] = None
            missing.append(k)
    if missing_as_reference:
        for k in missing + no_call:
            dosage[k] = 0
    return Observation(dosage, units, missing, no_call, sorted(set(filtered)))


# --------------------------------------------------------------------------- haplotypes


class _HapCaller:
    def __init__(self, defn: GeneDefinition, observed: set[VariantKey]):
        self.defn = defn
        self.observed = observed
        self.alleles = []
        for a in defn.snv_alleles:
            obs = frozenset(a.core & observed)
            if obs:
                n_impact = sum(1 for k in a.core if defn.variants.get(k) and defn.variants[k].impact)
                self.alleles.append((a, obs, n_impact))
        self.cache: dict[frozenset, tuple[str, ...]] = {}

    def __call__(self, hap: frozenset[VariantKey]) -> tuple[str, ...]:
        hit = self.cache.get(hap)
        if hit is not None:
            return hit
        d = self.defn
        cands = [(a, obs, n) for a, obs, n in self.alleles if obs <= hap]
        cands = [(a, obs, n) for a, obs, n in cands
                 if not any(obs < obs2 for _, obs2, _ in cands)]
        names = {a.name for a, _, _ in cands}
        if d.ref_allele != d.default_allele and d.ref_allele not in names and d.default_allele not in names:
            cands.append((d.alleles[d.default_allele], frozenset(), 0))
        if not cands:
            cands = [(d.alleles[d.default_allele], frozenset(), 0)]
        cands.sort(key=lambda t: (t[0].priority, -len(t[1]), -t[2], t[0].name == d.ref_allele,
                                  allele_sort_key(t[0].name)))
        win = cands[0]
        same = [t[0].name for t in cands[1:] if t[1] == win[1] and t[1]]
        out = (win[0].name, *same)
        self.cache[hap] = out
        return out


def _placements(units):
    """Yield (hap1, hap2) key sets for every placement of unphased heterozygous records."""
    fixed1: set = set()
    fixed2: set = set()
    free = []
    for keys, phased in units:
        if len(keys) == 1:          # haploid call on an autosome: count it on both copies
            keys = (keys[0], keys[0])
        if len(keys) != 2:
            continue
        a, b = keys
        if a == b or phased:
            if a is not None:
                fixed1.add(a)
            if b is not None:
                fixed2.add(b)
        else:
            free.append((a, b))
    if not free:
        yield frozenset(fixed1), frozenset(fixed2)
        return
    any_phased = bool(fixed1 ^ fixed2)
    first = [] if any_phased else [free[0]]
    rest = free if any_phased else free[1:]
    for flips in itertools.product((False, True), repeat=len(rest)):
        h1, h2 = set(fixed1), set(fixed2)
        for (a, b) in first:
            h1.add(a) if a is not None else None
            h2.add(b) if b is not None else None
        for (a, b), f in zip(rest, flips):
            x, y = (b, a) if f else (a, b)
            if x is not None:
                h1.add(x)
            if y is not None:
                h2.add(y)
        yield frozenset(h1), frozenset(h2)


# --------------------------------------------------------------------------- phenotypes


def _score(defn: GeneDefinition, name: str) -> float | None:
    a = defn.alleles.get(name)
    return None if a is None else a.activity_score


def _phenotype(defn: GeneDefinition, a: str, b: str) -> tuple[str, float | None]:
    if defn.phenotype_method == "Score":
        sa, sb = _score(defn, a), _score(defn, b)
        score = None if sa is None or sb is None else sa + sb
        return phenotype_from_score(defn, score), score
    if defn.phenotype_method == "Diplotype":
        return defn.phenotype_of(a, b) or "Indeterminate", None
    if defn.gene == "VKORC1":
        n = [a, b].count("rs9923231")
        return {0: "-1639 G/G", 1: "-1639 G/A", 2: "-1639 A/A"}[n], None
    return "Indeterminate", None


# --------------------------------------------------------------------------- calling


def call_gene(df: pd.DataFrame, gene: str, *, missing_as_reference: bool = False, matcher: str = "pharmcat",
              _records_cache: dict | None = None, _index: dict | None = None) -> dict[str, Any]:
    """Call one gene; returns a JSON-ready dict (see docs/pgx.md for every field)."""
    _check_matcher(matcher)
    if matcher == "pharmcat" and gene in PHARMCAT_GENES:
        index = _index if _index is not None else record_index(df)
        return call_gene_pharmcat(index, gene, missing_as_reference=missing_as_reference)
    return _call_gene_legacy(df, gene, missing_as_reference=missing_as_reference, _records_cache=_records_cache,
                             matcher=matcher)


def _check_matcher(matcher: str) -> None:
    if matcher not in MATCHERS:
        raise ValueError(f"unknown matcher {matcher!r} (known: {', '.join(MATCHERS)})")


def _call_gene_legacy(df: pd.DataFrame, gene: str, *, missing_as_reference: bool, _records_cache: dict | None,
                      matcher: str) -> dict[str, Any]:
    defn = load_gene(gene)
    obs = observe(df, defn, missing_as_reference=missing_as_reference, _records_cache=_records_cache)
    observed = {k for k, d in obs.dosage.items() if d is not None}
    keys = defn.defining_keys()
    unknown = sorted(set(obs.missing) | set(obs.no_call))
    n_pos = len({(k[0], k[1]) for k in keys})
    n_unknown_pos = len({(k[0], k[1]) for k in unknown})
    notes: list[str] = []
    untested = sorted((a.name for a in defn.snv_alleles if not (a.core & observed)), key=allele_sort_key)
    partial = sorted((a.name for a in defn.snv_alleles if (a.core & observed) and not a.core <= observed),
                     key=allele_sort_key)
    if missing_as_reference and unknown:
        notes.append(f"{n_unknown_pos} of {n_pos} allele-defining positions were not covered or not "
                     "called and were read as reference (missing_as_reference is on for this patient)")
    elif unknown:
        notes.append(f"{n_unknown_pos} of {n_pos} allele-defining positions were not covered or not "
                     f"called (no-call, not reference); {len(untested)} allele(s) cannot be detected "
                     f"and {len(partial)} allele(s) only partly: the call holds only if none of them "
                     "is present")
    if defn.sv_alleles:
        notes.append(SV_NOTE.format(alleles=", ".join(sorted(defn.sv_alleles, key=allele_sort_key))))
    if gene == "CYP2D6" and matcher == "pharmcat":
        notes.append("CYP2D6 is called with twinflow's legacy method (pypgx tables): PharmCAT does not call "
                     "CYP2D6 from a VCF")
    if gene == "CYP2D6":
        notes.append("CYP2D6 is called from SNVs and small indels only: copy number (*5 deletion, "
                     "xN duplications) and CYP2D6/CYP2D7 hybrids (*13, *36, *68 ...) need read depth "
                     "or long reads; a duplication of a functional allele would raise the activity score")
    if obs.filtered:
        notes.append("non-reference calls with a failed FILTER were used: "
                     + ", ".join(_fmt_key(k) for k in obs.filtered))

    result: dict[str, Any] = {
        "gene": gene,
        "matcher": "legacy",
        "phenotype_method": {"Score": "activity_score", "Diplotype": "diplotype_table"}.get(
            defn.phenotype_method, "genotype"),
        "missing_positions": sorted({_pos_label(k) for k in unknown},
                                    key=lambda s: (s.split(":")[0], int(s.split(":")[1]))),
        "missing_variants": [_fmt_key(k) + (f" ({defn.variants[k].rsid})" if k in defn.variants and defn.variants[k].rsid else "")
                             for k in unknown],
        "missing_as_reference": bool(missing_as_reference and unknown),
        "n_defining_positions": n_pos,
        "untested_alleles": untested,
        "partially_tested_alleles": partial,
        "not_detectable_alleles": sorted(defn.sv_alleles, key=allele_sort_key),
        "variants_found": [
            {"variant": _fmt_key(k), "rsid": defn.variants[k].rsid if k in defn.variants else "",
             "dosage": int(obs.dosage[k])}
            for k in keys if obs.dosage.get(k)],
        "notes": notes,
    }
    if not observed:
        result.update({"diplotypes": [], "ambiguous": False, "phenotype": "Indeterminate",
                       "activity_score": None, "phenotype_candidates": {},
                       "call_complete": False, "unexplained_variants": []})
        notes.insert(0, f"no allele-defining position of {gene} is covered by the VCF: no call")
        return result

    hap = _HapCaller(defn, observed)
    n_free = sum(1 for keys_, phased in obs.units if len(keys_) == 2 and keys_[0] != keys_[1] and not phased)
    if n_free > MAX_UNPHASED_HETS:
        notes.insert(0, f"{n_free} unphased heterozygous defining variants: too many placements to "
                        "enumerate; phase the VCF")
        result.update({"diplotypes": [], "ambiguous": True, "phenotype": "Indeterminate",
                       "activity_score": None, "phenotype_candidates": {}, "call_complete": False,
                       "unexplained_variants": []})
        return result
    dips: dict[str, tuple[str, str]] = {}
    for h1, h2 in _placements(obs.units):
        for a in hap(h1):
            for b in hap(h2):
                d = _diplotype(a, b)
                dips.setdefault(d, tuple(d.split("/", 1)))  # names never contain '/'
    ordered = sorted(dips, key=lambda d: tuple(allele_sort_key(x) for x in dips[d]))
    explained: set[VariantKey] = set()
    for d in ordered:
        for name in dips[d]:
            explained |= defn.alleles[name].core if name in defn.alleles else frozenset()
    unexplained = [k for k in keys if obs.dosage.get(k) and k not in explained]
    result["unexplained_variants"] = [_fmt_key(k) for k in unexplained]
    if unexplained:
        notes.append("variant(s) found that no called allele contains (an allele they belong to needs "
                     "other variants that are absent, or a novel haplotype): "
                     + ", ".join(_fmt_key(k) for k in unexplained) + "; review the call")
    cand = {d: _phenotype(defn, *dips[d]) for d in ordered}
    phenos = {p for p, _ in cand.values()}
    scores = {s for _, s in cand.values()}
    if len(phenos) == 1:
        phenotype = next(iter(phenos))
        score = next(iter(scores)) if len(scores) == 1 else None
    elif gene == "DPYD" and None not in scores:
        low = min(ordered, key=lambda d: cand[d][1])
        phenotype, score = cand[low]
        notes.append("unphased DPYD variants: per CPIC the variants are assumed to be in trans, "
                      f"i.e. the lowest activity score of the candidates ({low})")
    else:
        phenotype, score = "Indeterminate", None
    if len(ordered) > 1:
        notes.append(f"{len(ordered)} diplotypes fit the unphased genotypes: {', '.join(ordered)}")
    result.update({
        "diplotypes": ordered,
        "ambiguous": len(ordered) > 1,
        "phenotype": phenotype,
        "activity_score": score,
        "phenotype_candidates": {d: {"phenotype": p, "activity_score": s} for d, (p, s) in cand.items()},
        "call_complete": not unknown or bool(missing_as_reference),
    })
    if gene == "VKORC1":
        result["rs9923231_genotype"] = {"-1639 G/G": "GG", "-1639 G/A": "GA", "-1639 A/A": "AA"}.get(phenotype)
    return result


def call_genes(df: pd.DataFrame, genes: Iterable[str] = GENES, *,
               missing_as_reference: bool = False, matcher: str = "pharmcat") -> list[dict[str, Any]]:
    """Call every gene in ``genes`` (default :data:`GENES`) from one sample's table."""
    _check_matcher(matcher)
    recs = _records(df)
    index = record_index(df)
    legacy_src = source_info()
    pharmcat_src = pharmcat_source_info()
    out = []
    for g in genes:
        call = call_gene(df, g, missing_as_reference=missing_as_reference, matcher=matcher,
                         _records_cache=recs, _index=index)
        if call["matcher"] == "pharmcat":
            call["source"] = {"package": pharmcat_src["package"], "version": pharmcat_src["version"],
                              "origin": pharmcat_src["url"], "licence": "MPL-2.0",
                              "sha256": {k: v["sha256"] for k, v in pharmcat_src["files"].items()}}
        else:
            call["source"] = {"package": legacy_src["package"], "version": legacy_src["version"]}
        out.append(call)
    return out


def call_vcf(path: str | Path, *, sample: str | None = None, genes: Iterable[str] = GENES,
             missing_as_reference: bool = False, patient: str | None = None,
             matcher: str = "pharmcat") -> list[dict[str, Any]]:
    """Read a germline VCF/BCF (one sample, chosen by ``sample``) and call ``genes``."""
    _check_matcher(matcher)
    df = read_variants(path, sample=sample, patient=patient, kind="germline")
    return call_genes(df, genes, missing_as_reference=missing_as_reference, matcher=matcher)
