"""Per-gene calls with PharmCAT's semantics: VCF rows -> sample alleles -> matcher -> CPIC phenotype.

:func:`call_gene_pharmcat` returns the same record layout as the legacy caller
(:mod:`twinflow.pgx.caller`; fields in docs/pgx.md) plus ``matcher``, ``call``,
``diplotype_score``, ``haplotype_matches``, ``recommendation_diplotype``, ``phased`` and
``no_call_reason``.  ``diplotypes == []`` is PharmCAT's ``Unknown/Unknown``.

Phenotypes (:func:`phenotype_of`) use CPIC's allele functions as PharmCAT ships them: activity
scores for CYP2C9 and DPYD (2 normal, 1-1.5 intermediate, 0-0.5 poor), the function pair for
CYP2C19, CYP3A5, NUDT15, SLCO1B1, TPMT and UGT1A1 (rules read off CPIC's diplotype tables),
the rs9923231 genotype for VKORC1.  Special cases, as in PharmCAT's reporter:

* DPYD: the lowest-activity variant of each strand (phased) or the two lowest-activity variants
  (unphased) give the activity score; equal values prefer the variants DPWG also uses.
* SLCO1B1: when no diplotype can be called, the rs4149056 genotype gives the phenotype
  (T -> ``*1``, C -> ``*5``; ``recommendation_diplotype``), the diplotype stays uncalled.
"""

from __future__ import annotations

import bisect
import functools
import re
from typing import Any

import pandas as pd

from twinflow.io.variants import minimal_representation
from twinflow.pgx.definitions import GeneDefinition, load_definition, load_phenotypes
from twinflow.pgx.matcher import (
    HAPB3,
    UNDOCUMENTED_AS_REFERENCE,
    SampleAllele,
    call_dpyd,
    compare_names,
    components,
    diplotype_name,
    match_gene,
    sort_names,
    summarize_alleles,
)

__all__ = ["call_gene_pharmcat", "phenotype_of", "record_index", "sample_alleles"]

_LETTER = {"normal function": "N", "increased function": "I", "decreased function": "D",
           "no function": "X", "uncertain function": "U", "unknown function": "U"}
_SYMBOLIC = re.compile(r"^(<.*>|\*|\.)$")


# --------------------------------------------------------------------------- VCF records


def record_index(df: pd.DataFrame) -> dict[str, Any]:
    """VCF records of a variant table, per chromosome, sorted by position."""
    by_chrom: dict[str, dict[int, list[dict[str, Any]]]] = {}
    keys: dict[tuple, dict[str, Any]] = {}
    if len(df):
        cols = ["chrom", "pos", "ref", "alt", "orig_pos", "orig_ref", "orig_alts", "gt", "phased", "filter"]
        seen: set[tuple] = set()
        for row in df[cols].itertuples(index=False):
            rk = (row.chrom, int(row.orig_pos), row.orig_ref, row.orig_alts)
            rec = {"chrom": row.chrom, "pos": int(row.orig_pos), "ref": row.orig_ref,
                   "alts": [] if row.orig_alts in (".", "") else row.orig_alts.split(","),
                   "gt": row.gt, "phased": bool(row.phased), "filter": row.filter}
            if rk not in seen:
                seen.add(rk)
                by_chrom.setdefault(row.chrom, {}).setdefault(rec["pos"], []).append(rec)
            if row.alt not in (".", "") and not _SYMBOLIC.match(str(row.alt)):
                keys.setdefault((row.chrom, int(row.pos), row.ref, row.alt), rec)
    starts = {c: sorted(d) for c, d in by_chrom.items()}
    return {"by_chrom": by_chrom, "starts": starts, "keys": keys}


def _key(pos: int, ref: str, alt: str) -> tuple[int, str, str]:
    return minimal_representation(pos, ref, alt)


def _gt_indices(gt: str) -> list[int | None]:
    if not gt or gt == ".":
        return [None, None]
    return [int(x) if x.isdigit() else None for x in re.split(r"[/|]", gt)]


def _to_definition(rec: dict[str, Any], idx: int, defn_ref: str, defn_alts: tuple[str, ...], pos: int) -> str:
    """VCF allele ``idx`` of ``rec`` in the definition's representation (unknown alleles as is)."""
    alleles = [rec["ref"], *rec["alts"]]
    if idx >= len(alleles):
        return "."
    s = alleles[idx]
    if rec["pos"] == pos and rec["ref"] == defn_ref:
        return s
    if idx == 0:
        return defn_ref
    if not _SYMBOLIC.match(s):
        k = _key(rec["pos"], rec["ref"], s)
        for a in defn_alts:
            if _key(pos, defn_ref, a) == k:
                return a
    return s


def sample_alleles(index: dict[str, Any], defn: GeneDefinition, *, missing_as_reference: bool = False
                   ) -> tuple[dict[int, SampleAllele], dict[str, list[int]]]:
    """The sample's alleles at every allele-defining position of ``defn`` (definition
    representation) and the positions that were no-calls, partial calls, filtered or carried
    an undocumented allele."""
    chrom = defn.chromosome
    recs = index["by_chrom"].get(chrom, {})
    starts = index["starts"].get(chrom, [])
    out: dict[int, SampleAllele] = {}
    info: dict[str, list[int]] = {"no_call": [], "partial": [], "novel": [], "filtered": [],
                                  "reference_block": [], "missing": [], "read_as_reference": []}
    def unobserved(p: int, ref: str, kind: str) -> None:
        if missing_as_reference:
            out[p] = SampleAllele(p, ref, ref, False)
            info["read_as_reference"].append(p)
        else:
            info[kind].append(p)

    for v in defn.variants:
        p = v.position
        cands = recs.get(p, [])
        rec = None
        if cands:
            called = [r for r in cands if any(i not in (None, 0) for i in _gt_indices(r["gt"]))]
            rec = called[0] if called else cands[0]
        else:
            for a in v.alts:                       # same variant written with another anchor
                hit = index["keys"].get((chrom, *_key(p, v.ref, a)))
                if hit is not None:
                    rec = hit
                    break
        if rec is None:
            hi = bisect.bisect_left(starts, p)
            block = None
            for s in reversed(starts[max(0, hi - 50):hi]):
                for r in recs[s]:
                    if s + len(r["ref"]) - 1 >= p and all(_SYMBOLIC.match(a) for a in r["alts"]) and \
                            all(i == 0 for i in _gt_indices(r["gt"])):
                        block = r
                if block:
                    break
            if block is not None:
                out[p] = SampleAllele(p, v.ref, v.ref, False)
                info["reference_block"].append(p)
            else:
                unobserved(p, v.ref, "missing")
            continue
        idx = _gt_indices(rec["gt"])
        if len(idx) == 1 or all(i is None for i in idx):
            unobserved(p, v.ref, "no_call")
            continue
        alleles = []
        for i in idx[:2]:
            if i is None:
                alleles.append(None)
                continue
            s = _to_definition(rec, i, v.ref, v.alts, p)
            if s != v.ref and s not in v.alts:
                if defn.gene in UNDOCUMENTED_AS_REFERENCE:
                    s = v.ref
                info["novel"].append(p)
            alleles.append(s)
        a1, a2 = alleles
        if a1 is None or a2 is None:
            present = a1 if a1 is not None else a2
            if present == v.ref:             # 0/. -> missing position (PharmCAT)
                unobserved(p, v.ref, "no_call")
                continue
            info["partial"].append(p)        # 1/. -> accepted as is: no diplotype can be called
            a1, a2 = present, None
        if rec["filter"] not in ("PASS", ".") and (a1 != v.ref or a2 != v.ref):
            info["filtered"].append(p)
        out[p] = SampleAllele(p, a1, a2, rec["phased"])
    for k in info:
        info[k] = sorted(set(info[k]))
    return out, info


# --------------------------------------------------------------------------- phenotypes


def _activity(gene: str, name: str) -> float | None:
    vals = load_phenotypes(gene).get("activity_values", {})
    return vals.get(name)


def _score_phenotype(gene: str, score: float | None) -> str:
    if score is None:
        return "Indeterminate"
    for lo, hi, label in load_phenotypes(gene)["score_phenotypes"]:
        if lo <= score < hi:
            return label
    return "Indeterminate"


def function_of(gene: str, name: str) -> str | None:
    return load_phenotypes(gene).get("functions", {}).get(name)


def phenotype_of(gene: str, a: str, b: str) -> tuple[str, float | None]:
    """CPIC phenotype (and activity score where CPIC defines one) of diplotype ``a/b``."""
    data = load_phenotypes(gene)
    if data["method"] == "activity_score":
        va, vb = _activity(gene, a), _activity(gene, b)
        score = None if va is None or vb is None else va + vb
        return _score_phenotype(gene, score), score
    if data["method"] == "genotype":
        return data["genotypes"].get(diplotype_name(a, b), "Indeterminate"), None
    fa, fb = function_of(gene, a), function_of(gene, b)
    if fa is None or fb is None:
        return "Indeterminate", None
    la, lb = _LETTER.get(fa.lower()), _LETTER.get(fb.lower())
    if la is None or lb is None:
        return "Indeterminate", None
    return data["pairs"].get("/".join(sorted((la, lb))), "Indeterminate"), None


def _dpyd_sort_key(gene: str):
    dpwg = set(load_phenotypes(gene).get("dpwg_alleles", []))

    def cmp(x: str, y: str) -> int:
        ax, ay = _activity(gene, x), _activity(gene, y)
        kx = (-1.0 if ax is None else ax, 0 if x in dpwg else 1)
        ky = (-1.0 if ay is None else ay, 0 if y in dpwg else 1)
        if kx != ky:
            return -1 if kx < ky else 1
        return compare_names(x, y)
    return functools.cmp_to_key(cmp)


def dpyd_lowest(names: list[str]) -> str:
    return sorted(names or ["Reference"], key=_dpyd_sort_key("DPYD"))[0]


# --------------------------------------------------------------------------- one gene


def _pos_label(chrom: str, p: int) -> str:
    return f"{chrom}:{p}"


def _base_record(defn: GeneDefinition, sample: dict[int, SampleAllele], info: dict[str, list[int]],
                 missing_as_reference: bool) -> dict[str, Any]:
    chrom = defn.chromosome
    unknown = sorted(set(info["missing"]) | set(info["no_call"]))
    data = load_phenotypes(defn.gene)
    method = {"activity_score": "activity_score", "function_pair": "diplotype_table",
              "genotype": "genotype"}[data["method"]]
    untested = sort_names(a.name for a in defn.named_alleles
                          if not a.reference and a.positions and a.positions <= set(unknown))
    partial = sort_names(a.name for a in defn.named_alleles
                         if not a.reference and a.positions & set(unknown) and not a.positions <= set(unknown))
    known = {a.name for a in defn.named_alleles}
    sv = sort_names(n for n in data.get("functions", data.get("activity_values", {})) if n not in known)
    found = []
    for v in defn.variants:
        sa = sample.get(v.position)
        if sa is None:
            continue
        alts = [a for a in (sa.allele1, sa.allele2) if a is not None and a != v.ref]
        for alt in sorted(set(alts)):
            found.append({"variant": f"{chrom}:{v.position} {v.ref}>{alt}", "rsid": v.rsid or "",
                          "dosage": alts.count(alt)})
    notes: list[str] = []
    if unknown:
        notes.append(f"{len(unknown)} of {len(defn.variants)} allele-defining positions were not covered or not "
                     f"called; as in PharmCAT they are left out of every definition ({len(untested)} allele(s) "
                     f"cannot be detected, {len(partial)} only partly)")
    if info["read_as_reference"]:
        notes.append(f"{len(info['read_as_reference'])} uncovered or uncalled positions were read as reference "
                     "(missing_as_reference is on for this patient)")
    if info["reference_block"]:
        notes.append(f"{len(info['reference_block'])} positions read as reference from records whose REF spans them with only symbolic ALTs (reference blocks)")
    if info["filtered"]:
        notes.append("non-reference calls with a failed FILTER were used (PharmCAT uses them too): "
                     + ", ".join(_pos_label(chrom, p) for p in info["filtered"]))
    if info["novel"]:
        how = ("read as reference (PharmCAT's rule for this gene)" if defn.gene in UNDOCUMENTED_AS_REFERENCE
               else "no named allele contains them")
        notes.append("alleles not in the definitions at " + ", ".join(_pos_label(chrom, p) for p in info["novel"])
                     + ": " + how)
    if sv:
        notes.append("alleles CPIC assigns a function but PharmCAT does not define from a VCF (copy number, "
                     "structural): " + ", ".join(sv))
    return {
        "gene": defn.gene,
        "matcher": "pharmcat",
        "phenotype_method": method,
        "missing_positions": [_pos_label(chrom, p) for p in unknown],
        "missing_variants": [f"{chrom}:{p} {defn.variant(p).label.split(' ', 1)[1]}" for p in unknown],
        "missing_as_reference": bool(missing_as_reference and info["read_as_reference"]),
        "n_defining_positions": len(defn.variants),
        "untested_alleles": untested,
        "partially_tested_alleles": partial,
        "not_detectable_alleles": sv,
        "variants_found": found,
        "notes": notes,
        "unexplained_variants": [],
        "call_complete": not unknown,
    }


def _no_call(result: dict[str, Any], reason: str) -> dict[str, Any]:
    result.update({"diplotypes": [], "call": "Unknown/Unknown", "ambiguous": False, "phenotype": "Indeterminate",
                   "activity_score": None, "phenotype_candidates": {}, "diplotype_score": None,
                   "recommendation_diplotype": None, "no_call_reason": reason})
    result["notes"].insert(0, f"no call (PharmCAT: Unknown/Unknown): {reason}")
    return result


def _candidates(gene: str, pairs: list[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    out = {}
    for a, b in pairs:
        ph, sc = phenotype_of(gene, a, b)
        out[diplotype_name(a, b)] = {"phenotype": ph, "activity_score": sc}
    return out


def _summarize(result: dict[str, Any], cands: dict[str, dict[str, Any]]) -> None:
    phenos = {c["phenotype"] for c in cands.values()}
    scores = {c["activity_score"] for c in cands.values()}
    if len(phenos) == 1:
        result["phenotype"] = next(iter(phenos))
        result["activity_score"] = next(iter(scores)) if len(scores) == 1 else None
    else:
        result["phenotype"], result["activity_score"] = "Indeterminate", None
    result["phenotype_candidates"] = cands


def call_gene_pharmcat(index: dict[str, Any], gene: str, *, missing_as_reference: bool = False) -> dict[str, Any]:
    """Call ``gene`` from a :func:`record_index` with PharmCAT's semantics (module doc)."""
    defn = load_definition(gene)
    sample, info = sample_alleles(index, defn, missing_as_reference=missing_as_reference)
    result = _base_record(defn, sample, info, missing_as_reference)
    result["no_call_reason"] = None
    if not sample:
        return _no_call(result, f"no allele-defining position of {gene} is in the VCF")
    try:
        if gene == "DPYD":
            return _dpyd(defn, sample, result)
        gm = match_gene(defn, sample)
    except OverflowError as exc:
        return _no_call(result, f"{exc}: too many strand permutations; phase the VCF")
    result["phased"] = gm.phased
    result["haplotype_matches"] = gm.haplotype_matches
    if not gm.diplotypes:
        if info["partial"]:
            reason = "partial genotype (one allele missing) at " + ", ".join(
                _pos_label(defn.chromosome, p) for p in info["partial"])
        elif info["novel"] and gene not in UNDOCUMENTED_AS_REFERENCE:
            reason = "allele(s) not in the definitions at " + ", ".join(
                _pos_label(defn.chromosome, p) for p in info["novel"])
        else:
            reason = "no pair of named alleles explains the genotypes"
        result["unexplained_variants"] = [f["variant"] for f in result["variants_found"]]
        _no_call(result, reason)
        if gene == "SLCO1B1":
            _slco1b1_rs4149056(defn, sample, result)
        return result
    pairs = [(d.hap1, d.hap2) for d in gm.diplotypes]
    names = [d.name for d in gm.diplotypes]
    result.update({"diplotypes": names, "call": " or ".join(names), "ambiguous": len(names) > 1,
                   "diplotype_score": gm.diplotypes[0].score, "recommendation_diplotype": None})
    _summarize(result, _candidates(gene, pairs))
    if len(names) > 1:
        result["notes"].append(f"{len(names)} diplotypes share the top score ({gm.diplotypes[0].score}): "
                               + ", ".join(names))
    if gene == "VKORC1":
        result["rs9923231_genotype"] = {"-1639 G/G": "GG", "-1639 G/A": "GA", "-1639 A/A": "AA"}.get(result["phenotype"])
    return result


def _slco1b1_rs4149056(defn: GeneDefinition, sample: dict[int, SampleAllele], result: dict[str, Any]) -> None:
    v = next(v for v in defn.variants if v.rsid == "rs4149056")
    sa = sample.get(v.position)
    if sa is None or sa.allele1 is None or sa.allele2 is None:
        return
    to_hap = {"T": "*1", "C": "*5"}
    if sa.allele1 not in to_hap or sa.allele2 not in to_hap:
        return
    a, b = sorted((sa.allele1, sa.allele2), reverse=True)
    ph, _ = phenotype_of("SLCO1B1", to_hap[a], to_hap[b])
    result["recommendation_diplotype"] = diplotype_name(to_hap[a], to_hap[b])
    result["phenotype"] = ph
    result["notes"].append(f"SLCO1B1 phenotype from rs4149056 alone ({a}/{b} -> {result['recommendation_diplotype']}), "
                           "as PharmCAT does when no diplotype can be called")


def _dpyd(defn: GeneDefinition, sample: dict[int, SampleAllele], result: dict[str, Any]) -> dict[str, Any]:
    res = call_dpyd(defn, sample)
    result["notes"].extend(res.notes)
    result["phased"] = res.match.phased
    result["haplotype_matches"] = res.match.haplotype_matches
    result["diplotype_score"] = None
    if res.diplotype is not None:
        s1, s2 = res.diplotype
        low1, low2 = dpyd_lowest(s1), dpyd_lowest(s2)
        name = res.match.diplotypes[0].name
        result.update({"diplotypes": [name], "call": name, "ambiguous": False})
        how = "lowest-activity variant of each strand"
    else:
        listing = summarize_alleles(res.haplotypes)
        ordered = sorted(res.haplotypes, key=_dpyd_sort_key("DPYD"))
        low1 = ordered[0] if ordered else "Reference"
        low2 = ordered[1] if len(ordered) > 1 else "Reference"
        result.update({"diplotypes": listing, "call": ", ".join(listing), "ambiguous": True})
        result["notes"].append("unphased DPYD with more than one heterozygous position: PharmCAT lists the "
                               "variants found and takes the two with the lowest activity value (CPIC: "
                               "different decreased/no-function variants are presumed in trans)")
        how = "two lowest-activity variants"
    ph, score = phenotype_of("DPYD", low1, low2)
    rec = diplotype_name(low1, low2)
    result["recommendation_diplotype"] = rec
    result["phenotype"], result["activity_score"] = ph, score
    result["phenotype_candidates"] = {rec: {"phenotype": ph, "activity_score": score}}
    result["notes"].append(f"DPYD activity score from the {how}: {rec} = {score:g}" if score is not None
                           else f"DPYD activity score undefined for {rec}")
    if HAPB3 in (components(low1) + components(low2)):
        result["notes"].append("HapB3 (c.1129-5923C>G, c.1236G>A) counts as decreased function (0.5)")
    return result
