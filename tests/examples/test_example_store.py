"""The store example on its synthetic export: every piece of dirt the generator injected
is found and counted exactly by the contract's checks across rows, and the derived
daily units equal the generator's clean truth."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tuesday.examples
from tuesday.data import derived, tables
from tuesday.data.materialize import materialize
from tuesday.examples.store import shop
from tuesday.project import LoadedProject, load_project
from tuesday.release import registry
from tuesday.report.evaluation import evaluation_report
from tuesday.serve.predictor import Predictor
from tuesday.train import training
from tuesday.train.contributions import contributions
from tuesday.train.explanations import explain
from tuesday.workspace import Workspace, open_workspace

PROJECT = Path(tuesday.examples.__file__).parent / "store" / "project.py"
AS_OF = datetime(2024, 4, 29, 23)  # the evening of the export's last day


@pytest.fixture(scope="module")
def store() -> LoadedProject:
    return load_project(PROJECT)


@pytest.fixture(scope="module")
def export() -> shop.Export:
    return shop.export(seed=7)


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, store: LoadedProject,
             export: shop.Export) -> tuple[Workspace, dict[str, tables.IngestResult]]:
    """The whole export ingested at once (one file per source)."""
    folder = tmp_path_factory.mktemp("store-files")
    ws = open_workspace(tmp_path_factory.mktemp("store-ws"))
    results = {name: tables.ingest_file(ws, store.project.source(name), path, as_of=AS_OF)
               for name, path in export.write(folder).items()}
    derived.refresh(ws, store.project)
    return ws, results


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[["item", "date", "units"]].copy()
    out["date"] = pd.to_datetime(out["date"]).astype("datetime64[us]")
    return out.sort_values(["date", "item"]).reset_index(drop=True)


def test_the_generator_injected_every_kind(export: shop.Export) -> None:
    for kind in ("retried_receipts", "void_pairs", "refunds", "bad_references", "hour_zero",
                 "stock_typos", "negative_book_stock", "stock_gaps", "duplicate_invoices",
                 "category_spellings"):
        assert export.ledger[kind], kind


def test_every_injected_kind_is_found_and_counted_exactly(
        ingested: tuple[Workspace, dict[str, tables.IngestResult]],
        export: shop.Export) -> None:
    _, res = ingested
    led = export.ledger
    till = res["till_lines"].report
    retried = till.check("retried_receipt")
    assert (retried.groups, retried.rows) == (len(led["retried_receipts"]),
                                              sum(n for _, n in led["retried_receipts"]))
    assert till.check("void").groups == len(led["void_pairs"])
    assert till.check("void").rows == 2 * len(led["void_pairs"])
    refund = till.check("refund")
    assert refund.rows == len(led["refunds"])
    assert refund.details["missing"] == len(led["bad_references"])
    assert till.check("hour_zero").rows == len(led["hour_zero"])
    # received = accepted + quarantined, row for row: the copies and bad references
    assert till.quarantined == retried.rows + len(led["bad_references"])
    assert till.accepted + till.quarantined == till.received
    stock = res["stock"].report
    assert stock.check("stock_typo").rows == len(led["stock_typos"])
    assert stock.check("missing_snapshot").rows == len(led["stock_gaps"])
    assert stock.check("sold_out").rows == len(led["sold_out"])
    inv = res["deliveries"].report.check("duplicate_invoice")
    assert (inv.groups, inv.rows) == (len(led["duplicate_invoices"]),
                                      sum(n for _, n in led["duplicate_invoices"]))
    spelling = res["items"].report.check("category_spelling")
    assert spelling.rows == sum(led["category_spellings"].values())
    assert res["items"].report.quarantined == 0


def test_quarantine_holds_the_copies_with_their_reason(
        ingested: tuple[Workspace, dict[str, tables.IngestResult]], store: LoadedProject,
        export: shop.Export) -> None:
    ws, _ = ingested
    q = tables.quarantine(ws, store.project.source("till_lines"))
    reasons = q["reasons"].value_counts().to_dict()
    assert reasons == {"duplicate_group:retried_receipt": sum(
        n for _, n in export.ledger["retried_receipts"]),
        "reference_missing:refund": len(export.ledger["bad_references"])}


def test_flags_keep_real_rows_and_repairs_fix_typos(
        ingested: tuple[Workspace, dict[str, tables.IngestResult]], store: LoadedProject,
        export: shop.Export) -> None:
    ws, _ = ingested
    till = tables.read_table(ws, store.project.source("till_lines")).to_pandas()
    assert int(till["flag_hour_zero"].sum()) == len(export.ledger["hour_zero"])
    assert int(till["flag_refund"].sum()) == len(export.ledger["refunds"])
    stock = tables.read_table(ws, store.project.source("stock")).to_pandas()
    typo = stock.set_index(["item", "date"]).loc[
        [(i, pd.Timestamp(d)) for i, d in export.ledger["stock_typos"]], "book_stock"]
    assert (typo < 200).all()


def test_derived_daily_units_equal_the_clean_truth(
        ingested: tuple[Workspace, dict[str, tables.IngestResult]], store: LoadedProject,
        export: shop.Export) -> None:
    ws, _ = ingested
    got = _sorted(tables.read_table(ws, store.project.source("daily_units")).to_pandas())
    pd.testing.assert_frame_equal(got, _sorted(export.truth))


def test_weekly_deliveries_find_copies_and_references_across_ingests(
        tmp_path: Path, store: LoadedProject, export: shop.Export) -> None:
    """Ingested a week at a time, receipts re-posted in a later file and refunds of a
    receipt ingested weeks before are recognised through the table."""
    ws = open_workspace(tmp_path / "ws")
    till = store.project.source("till_lines")
    lines = export.frames["till_lines"]
    first = lines[pd.to_datetime(lines["ts"]) < "2024-02-01"]
    later = lines[pd.to_datetime(lines["ts"]) >= "2024-02-01"]
    again = first[first["receipt"].isin(first["receipt"].unique()[:3])]
    a = tables.ingest_frame(ws, till, first.astype(str), as_of=datetime(2024, 2, 1))
    b = tables.ingest_frame(ws, till, pd.concat([again, later]).astype(str),
                            as_of=datetime(2024, 5, 1))
    own = [(r, n) for r, n in export.ledger["retried_receipts"] if r >= "240201"]
    assert b.report.check("retried_receipt").groups == 3 + len(own)
    assert b.report.check("retried_receipt").rows == len(again) + sum(n for _, n in own)
    refunds_later = [r for r in export.ledger["refunds"] if r[0] >= "240201"]
    assert a.report.check("refund").rows + b.report.check("refund").rows == \
        len(export.ledger["refunds"])
    assert b.report.check("refund").rows == len(refunds_later)


@pytest.fixture(scope="module")
def trained(ingested: tuple[Workspace, dict[str, tables.IngestResult]],
            store: LoadedProject) -> training.TrainResult:
    ws, _ = ingested
    return training.train(ws, store, "units_1d", AS_OF)


def test_sold_out_days_are_left_out_of_training_and_scored_both_ways(
        ingested: tuple[Workspace, dict[str, tables.IngestResult]], store: LoadedProject,
        export: shop.Export, trained: training.TrainResult) -> None:
    ws, _ = ingested
    ts = training.training_set(ws, store.project, store.project.model("units_1d"), AS_OF)
    sold_out = {(i, pd.Timestamp(d)) for i, d in export.ledger["sold_out"]}
    marked = set(zip(ts.frame.loc[ts.frame["_censored"], "item"],
                     ts.frame.loc[ts.frame["_censored"], "date"], strict=True))
    assert marked == sold_out  # read point in time from the stock table, typos repaired
    m = trained.metrics
    cens = m["censored"]
    preds = pd.read_parquet(io.BytesIO(ws.get_artifact(
        trained.manifest["backtest_predictions"]["sha256"])))
    assert cens["rows"] == int(preds["_censored"].sum()) > 0
    keep = ~preds["_censored"].to_numpy(bool)
    mae = float(np.mean(np.abs(preds["units"][keep] - preds["model"][keep])))
    assert cens["without"]["model"]["mae"] == pytest.approx(mae)
    assert cens["without"]["model"]["mae"] != m["model"]["mae"]
    in_window = ts.frame["date"] > pd.Timestamp(AS_OF) - pd.Timedelta(days=3650)
    assert m["train_rows"] == int((in_window & ~ts.frame["_censored"]).sum())
    report = evaluation_report(ws, store, "units_1d", trained.version)
    assert report["censored"]["rows"] == cens["rows"]
    assert any("censored" in h for h in report["headline"]["highlights"])


def test_text_features_are_categories_with_codes_kept_from_training_to_serving(
        ingested: tuple[Workspace, dict[str, tables.IngestResult]], store: LoadedProject,
        trained: training.TrainResult) -> None:
    ws, _ = ingested
    cats = trained.manifest["categories"]
    assert cats["category"] == sorted(shop.CATEGORIES.values())  # spellings repaired
    assert "Easter Monday" in cats["holiday_name"]
    booster = training.load_booster(ws, trained.artifact)
    assert "categorical_feature" in booster.model_to_string()[:20000] or any(
        "cat_threshold" in line for line in booster.model_to_string().splitlines()[:400])
    fitted = training.load_model(ws, trained.manifest)
    assert fitted.categories["category"] == tuple(cats["category"])
    # serving codes values as training did; a category unseen in training gets the
    # unseen code, a missing one NaN, and both are answered
    frame = pd.DataFrame([{**{f: 1.0 for f in fitted.features}, "category": c,
                           "holiday_name": None} for c in ("Dairy", "Frozen", None)])
    x = fitted.encode(frame)
    j = fitted.features.index("category")
    assert x[0, j] == cats["category"].index("Dairy")
    assert x[1, j] == len(cats["category"])
    assert np.isnan(x[2, j])
    assert np.isfinite(fitted.predict(x)).all()
    # explanations name the category, not its code
    model = store.project.model("units_1d")
    contrib = contributions(fitted, x)
    shown = {r.feature: r for r in explain(model, contrib, 0).reasons}
    assert shown["category"].value == "Dairy"
    assert shown["category"].text == "category is 'Dairy'"
    assert {r.feature: r for r in explain(model, contrib, 1).reasons}["category"].value == \
        "(unseen in training)"
    # a bare date means that whole day: the ingest at 23:00 counts, targets are dates
    made = materialize(ws, store.project, model, datetime(2024, 4, 29))
    assert made["first_target"] == "2024-04-30T00:00:00"
    assert materialize(ws, store.project, model, AS_OF)["first_target"] == made["first_target"]
    registry.promote(ws, model, trained.version, as_of=AS_OF, override_reason="test")
    p = Predictor(ws, store, log_predictions=False)
    try:
        out = p.predict("units_1d", [{"item": "A001", "date": "2024-04-30"}])
    finally:
        p.close()
    assert out["predictions"][0]["prediction"] >= 0


def test_the_cli_ingest_computes_the_derived_sources_that_read_it(
        tmp_path: Path, export: shop.Export) -> None:
    from click.testing import CliRunner

    from tuesday.cli import main

    files = export.write(tmp_path / "data", until="2024-01-14")
    base = ["--project", str(PROJECT), "--workspace", str(tmp_path / "ws")]
    runner = CliRunner()
    r = runner.invoke(main, [*base, "ingest", "stock", str(files["stock"]),
                             "--as-of", "2024-01-14T22:00"])
    assert r.exit_code == 0, r.output
    assert "Derived daily_units: version 0 (full)" in r.output
    r = runner.invoke(main, [*base, "ingest", "till_lines", str(files["till_lines"]),
                             "--as-of", "2024-01-14T22:00", "--json"])
    assert r.exit_code == 0, r.output
    assert '"mode": "incremental"' in r.output
    r = runner.invoke(main, [*base, "ingest", "daily_units", str(files["stock"])])
    assert r.exit_code != 0 and "is derived from till_lines, stock" in r.output


def test_the_monitor_gives_accuracy_with_and_without_sold_out_days(
        ingested: tuple[Workspace, dict[str, tables.IngestResult]], store: LoadedProject,
        export: shop.Export) -> None:
    """Served answers joined to ground truth: the live accuracy is given with and
    without the sold-out days, read from the stock table as known at the as-of."""
    from tuesday.watch import quality

    ws, _ = ingested
    truth = export.truth[export.truth["date"] >= "2024-04-01"]
    sold = {(i, d) for i, d in export.ledger["sold_out"] if d >= "2024-04-01"}
    off = np.where([(i, d) in sold for i, d in zip(truth["item"], truth["date"],
                                                      strict=True)], 5.0, 1.0)
    log = pd.DataFrame({"entity": truth["item"].to_numpy(),
                        "target_time": pd.to_datetime(truth["date"]).astype("datetime64[us]"),
                        "prediction": truth["units"].to_numpy() + off,
                        "served_at": pd.Timestamp("2024-04-01"), "baselines": ""})
    q = quality.live_quality(ws, store, "units_1d", log, AS_OF)
    assert q["censored"]["rows"] == len(sold) > 0
    assert q["rows_with_ground_truth"] == len(truth)
    assert q["model"]["mae"] == pytest.approx(float(off.mean()))
    assert q["censored"]["without"]["model"]["mae"] == pytest.approx(1.0)
