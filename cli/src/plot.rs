//! The loss curve of a run as a PNG (plotters, no fonts: axes and curves only; the numbers
//! are in metrics.jsonl).

use std::path::Path;

use anyhow::{Result, anyhow};
use plotters::prelude::*;
use train::StepMetrics;

/// Training loss (blue) and validation loss (red points joined) against steps.
pub fn loss_curve(metrics: &[StepMetrics], path: &Path) -> Result<()> {
    let train: Vec<(f64, f64)> = metrics
        .iter()
        .filter(|m| m.loss.is_finite())
        .map(|m| (m.step as f64, m.loss))
        .collect();
    let val: Vec<(f64, f64)> = metrics
        .iter()
        .filter_map(|m| m.val_loss.map(|v| (m.step as f64, v)))
        .collect();
    if train.is_empty() {
        return Ok(());
    }
    let max_step = train.iter().map(|p| p.0).fold(1.0, f64::max);
    let (lo, hi) = train
        .iter()
        .chain(&val)
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let margin = ((hi - lo) * 0.05).max(1e-3);
    let root = BitMapBackend::new(path, (800, 500)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| anyhow!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .margin(20)
        .build_cartesian_2d(0.0..max_step, (lo - margin)..(hi + margin))
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_labels(0)
        .y_labels(0)
        .draw()
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(train, &BLUE))
        .map_err(|e| err(&e))?;
    if !val.is_empty() {
        chart
            .draw_series(LineSeries::new(val, &RED))
            .map_err(|e| err(&e))?;
    }
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
