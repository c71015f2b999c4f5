//! The cartesian frame shared by line, stacked, and burn charts: where the plot sits once its tick
//! labels are measured, its grid and axes, and labelled horizontal reference lines.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{
    self, AXIS, Area, GRID, INK, MUTED, PAD, TEXT_SIZE, draw_text, fit, text_style, text_width,
};
use super::format::{self, DateStyle, date_ticks, decimals_for_step, format_date, nice_ticks};
use super::{ChartError, ChartSpec};

/// How the x axis reads its positions.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum XScale {
    /// Days since 1970-01-01 in the chart's zone; `monthly` data is labelled "2026-03".
    Time { monthly: bool },
    /// Category labels at positions 0, 1, 2 ….
    Category(Vec<String>),
}

/// The plot rectangle in pixels and the value ranges it maps.
#[derive(Debug, Clone)]
pub(crate) struct Plot {
    pub left: i32,
    pub top: i32,
    pub right: i32,
    pub bottom: i32,
    x: (f64, f64),
    y: (f64, f64),
}

impl Plot {
    pub fn px(&self, x: f64) -> i32 {
        let (lo, hi) = self.x;
        let span = if hi > lo { hi - lo } else { 1.0 };
        self.left + ((x - lo) / span * f64::from(self.right - self.left)).round() as i32
    }

    pub fn py(&self, y: f64) -> i32 {
        let (lo, hi) = self.y;
        let span = if hi > lo { hi - lo } else { 1.0 };
        self.bottom - ((y - lo) / span * f64::from(self.bottom - self.top)).round() as i32
    }

    pub fn width(&self) -> i32 {
        self.right - self.left
    }

    /// Pixels between two x positions one unit apart.
    pub fn x_unit(&self) -> f64 {
        let (lo, hi) = self.x;
        if hi > lo {
            f64::from(self.right - self.left) / (hi - lo)
        } else {
            f64::from(self.right - self.left)
        }
    }
}

/// A labelled horizontal line: a target, a budget, a threshold.
#[derive(Debug, Clone)]
pub(crate) struct Reference {
    pub label: String,
    pub value: f64,
    pub color: RGBColor,
}

/// The x range covering `positions`, with half a category (or half a bar) of room at each end.
pub(crate) fn x_range(
    scale: &XScale,
    positions: impl IntoIterator<Item = f64>,
    bar_room: bool,
) -> (f64, f64) {
    if let XScale::Category(labels) = scale {
        return (-0.5, labels.len().max(1) as f64 - 0.5);
    }
    let mut sorted: Vec<f64> = positions.into_iter().collect();
    sorted.sort_by(f64::total_cmp);
    sorted.dedup();
    let (Some(&lo), Some(&hi)) = (sorted.first(), sorted.last()) else {
        return (0.0, 1.0);
    };
    let half = if bar_room {
        sorted
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, f64::min)
            .min(1.0e9)
            / 2.0
    } else {
        0.0
    };
    let half = if half.is_finite() && half > 0.0 {
        half
    } else if bar_room || hi == lo {
        0.5
    } else {
        0.0
    };
    (lo - half, hi + half)
}

/// Measures the labels, draws grid, axes and ticks below `top`, and returns the plot to draw in.
/// `y_values` are every value drawn (references included): the axis covers them and zero.
pub(crate) fn draw_axes<DB: DrawingBackend>(
    area: &Area<DB>,
    spec: &ChartSpec,
    top: i32,
    scale: &XScale,
    x: (f64, f64),
    y_values: impl IntoIterator<Item = f64>,
) -> Result<Plot, ChartError> {
    let (width, height) = area.dim_in_pixel();
    let (width, height) = (width as i32, height as i32);
    let (mut lo, mut hi) = (0.0f64, 0.0f64);
    for value in y_values {
        lo = lo.min(value);
        hi = hi.max(value);
    }
    // Headroom so a line at the maximum, and the label above it, stay inside the plot.
    hi += (hi - lo) * 0.06;
    let label_height = 22;
    let bottom = height - PAD - label_height;
    let plot_top = top + 8;
    let max_y_ticks = ((bottom - plot_top) / 34).max(2) as usize;
    let (ticks, step) = nice_ticks(lo, hi, max_y_ticks);
    let decimals = decimals_for_step(step, spec.unit);
    let y_labels: Vec<String> = ticks
        .iter()
        .map(|t| format::format_in_unit(*t, spec.unit, &spec.currency, Some(decimals)))
        .collect();
    let y_label_width = y_labels
        .iter()
        .map(|l| text_width(l, TEXT_SIZE, false))
        .max()
        .unwrap_or(0);
    let plot = Plot {
        left: PAD + y_label_width + 8,
        top: plot_top,
        right: width - PAD - 6,
        bottom,
        x,
        y: (
            ticks.first().copied().unwrap_or(lo),
            ticks.last().copied().unwrap_or(hi),
        ),
    };
    if plot.right - plot.left < 20 || plot.bottom - plot.top < 20 {
        return Err(ChartError::Render(format!(
            "{width}×{height} pixels leave no room for the plot"
        )));
    }

    let label_style = text_style(TEXT_SIZE, false, MUTED, HPos::Right, VPos::Center);
    for (tick, label) in ticks.iter().zip(&y_labels) {
        let y = plot.py(*tick);
        let color = if *tick == 0.0 { AXIS } else { GRID };
        area.draw(&PathElement::new(
            vec![(plot.left, y), (plot.right, y)],
            color.stroke_width(1),
        ))
        .map_err(canvas::render_error)?;
        draw_text(area, label, (plot.left - 8, y), &label_style)?;
    }
    area.draw(&PathElement::new(
        vec![(plot.left, plot.bottom), (plot.right, plot.bottom)],
        AXIS.stroke_width(1),
    ))
    .map_err(canvas::render_error)?;
    draw_x_ticks(area, &plot, scale, width)?;
    Ok(plot)
}

fn draw_x_ticks<DB: DrawingBackend>(
    area: &Area<DB>,
    plot: &Plot,
    scale: &XScale,
    width: i32,
) -> Result<(), ChartError> {
    let ticks: Vec<(f64, String)> = match scale {
        XScale::Time { monthly } => {
            // The widest label of any style, so the count never lets two labels touch.
            let label_width =
                text_width("2026-12", TEXT_SIZE, false).max(text_width("Mar 30", TEXT_SIZE, false));
            let max_ticks = (plot.width() / (label_width + 20)).max(2) as usize;
            let (lo, hi) = plot.x;
            let (positions, style) = date_ticks(lo, hi, max_ticks, *monthly);
            // A sub-day axis names the day once, on its first tick.
            let mut named_day = style != DateStyle::Hour;
            positions
                .into_iter()
                .map(|p| {
                    let label = if named_day {
                        format_date(p, style)
                    } else {
                        named_day = true;
                        format!(
                            "{} {}",
                            format_date(p, DateStyle::Day),
                            format_date(p, style)
                        )
                    };
                    (p, label)
                })
                .collect()
        }
        XScale::Category(labels) => {
            let band = plot.x_unit().max(1.0);
            let longest = labels
                .iter()
                .map(|l| text_width(l, TEXT_SIZE, false))
                .max()
                .unwrap_or(0)
                .min(140);
            let every = ((f64::from(longest + 12) / band).ceil() as usize).max(1);
            let room = (band * every as f64) as i32 - 10;
            labels
                .iter()
                .enumerate()
                .filter(|(i, _)| i % every == 0)
                .map(|(i, l)| (i as f64, fit(l, room, TEXT_SIZE, false)))
                .collect()
        }
    };
    let style = text_style(TEXT_SIZE, false, MUTED, HPos::Center, VPos::Top);
    for (position, label) in ticks {
        let x = plot.px(position);
        if x < plot.left - 1 || x > plot.right + 1 {
            continue;
        }
        area.draw(&PathElement::new(
            vec![(x, plot.bottom), (x, plot.bottom + 4)],
            AXIS.stroke_width(1),
        ))
        .map_err(canvas::render_error)?;
        // Keep the end labels whole: centred on the first or last tick they would cross the edge.
        let half = text_width(&label, TEXT_SIZE, false) / 2 + 1;
        let centre = x.clamp(
            PAD.min(width / 2) + half,
            (width - PAD / 2 - half).max(PAD + half),
        );
        draw_text(area, &label, (centre, plot.bottom + 8), &style)?;
    }
    Ok(())
}

/// Dashed lines across the plot, under the series.
pub(crate) fn draw_reference_lines<DB: DrawingBackend>(
    area: &Area<DB>,
    plot: &Plot,
    references: &[Reference],
) -> Result<(), ChartError> {
    for reference in references {
        let y = plot.py(reference.value);
        canvas::dashed(area, (plot.left, y), (plot.right, y), reference.color, 2)?;
    }
    Ok(())
}

/// Each reference's label at its right end just above it, over the series so none hides it.
pub(crate) fn draw_reference_labels<DB: DrawingBackend>(
    area: &Area<DB>,
    plot: &Plot,
    references: &[Reference],
) -> Result<(), ChartError> {
    for reference in references {
        let y = plot.py(reference.value);
        let label = fit(&reference.label, plot.width() / 2, TEXT_SIZE - 1.0, false);
        let style = text_style(
            TEXT_SIZE - 1.0,
            false,
            reference.color,
            HPos::Right,
            VPos::Center,
        );
        let label_width = text_width(&label, TEXT_SIZE - 1.0, false);
        // A white box under the label keeps it legible over the series it crosses.
        area.draw(&Rectangle::new(
            [(plot.right - label_width - 4, y - 17), (plot.right, y - 3)],
            WHITE.mix(0.8).filled(),
        ))
        .map_err(canvas::render_error)?;
        draw_text(area, &label, (plot.right - 2, y - 10), &style)?;
    }
    Ok(())
}

/// The spec's thresholds as references, plus its target when it has one.
pub(crate) fn spec_references(spec: &ChartSpec, target: Option<f64>) -> Vec<Reference> {
    let mut references: Vec<Reference> = spec
        .thresholds
        .iter()
        .filter(|t| t.value.is_finite())
        .map(|t| Reference {
            label: format!(
                "{} {}",
                t.label,
                super::format_value(t.value, spec.unit, &spec.currency)
            ),
            value: t.value,
            color: MUTED,
        })
        .collect();
    if let Some(target) = target.filter(|t| t.is_finite()) {
        references.push(Reference {
            label: format!(
                "target {}",
                super::format_value(target, spec.unit, &spec.currency)
            ),
            value: target,
            color: INK,
        });
    }
    references
}
