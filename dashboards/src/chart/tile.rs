//! Charts that are text: the stat tile (one number, its change, target and level) and the table
//! grid that PNG email uses where pages draw an HTML table.

use arrow::datatypes::DataType;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};

use super::canvas::{
    self, Area, BAD, GOOD, GRID, INK, MUTED, PAD, PALETTE, TEXT_SIZE, draw_text, fit, text_style,
    text_width,
};
use super::data::Table;
use super::format::format_in_unit;
use super::{ChartError, ChartSpec, Unit, format_value};

pub(crate) struct StatTile {
    value: f64,
    previous: Option<f64>,
    target: Option<f64>,
    level: Option<String>,
    /// Whether a lower value is the improvement (`better = lower`); `None` when not said.
    lower_is_better: Option<bool>,
}

impl StatTile {
    pub fn read(table: &Table, spec: &ChartSpec) -> Result<Option<Self>, ChartError> {
        let value = table.numbers("value")?;
        let previous = table.numbers_if_present("previous")?;
        let target = table.numbers_if_present("target")?;
        let level = table.texts_if_present("level")?;
        let better = table.texts_if_present("better")?;
        // The tile shows the first row; a query returning more is still drawn, from its first.
        let Some(Some(first)) = value.first() else {
            return Ok(None);
        };
        let first_of = |column: &Option<Vec<Option<f64>>>| {
            column.as_ref().and_then(|c| c.first().copied().flatten())
        };
        let text_of = |column: &Option<Vec<Option<String>>>| {
            column.as_ref().and_then(|c| c.first().cloned().flatten())
        };
        Ok(Some(Self {
            value: *first,
            previous: first_of(&previous),
            target: spec.target.or(first_of(&target)),
            level: text_of(&level)
                .map(|l| l.trim().to_lowercase())
                .filter(|l| !l.is_empty()),
            lower_is_better: text_of(&better).and_then(|b| {
                match b.trim().to_lowercase().as_str() {
                    "lower" => Some(true),
                    "higher" => Some(false),
                    _ => None,
                }
            }),
        }))
    }

    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        spec: &ChartSpec,
    ) -> Result<(), ChartError> {
        // The level badge sits top right, level with the title, which keeps clear of it.
        let badge_text = self.level.as_deref().map(capitalised);
        let badge = badge_text
            .as_deref()
            .map_or(0, |t| text_width(t, TEXT_SIZE - 1.0, true) + 16);
        let top = canvas::draw_frame_beside(area, spec, if badge > 0 { badge + 8 } else { 0 })?;
        let (width, height) = area.dim_in_pixel();
        let (width, height) = (width as i32, height as i32);
        let room = width - 2 * PAD;

        if let (Some(level), Some(text)) = (&self.level, &badge_text) {
            let color = match level.as_str() {
                "elite" => GOOD,
                "high" => PALETTE[5],
                "medium" => PALETTE[1],
                "low" => BAD,
                _ => GRID,
            };
            let (x1, y0) = (width - PAD, PAD);
            area.draw(&Rectangle::new(
                [(x1 - badge, y0), (x1, y0 + 20)],
                color.filled(),
            ))
            .map_err(canvas::render_error)?;
            let style = text_style(TEXT_SIZE - 1.0, true, INK, HPos::Center, VPos::Center);
            draw_text(area, text, (x1 - badge / 2, y0 + 10), &style)?;
        }

        let lines_below = usize::from(self.previous.is_some()) + usize::from(self.target.is_some());
        let below = lines_below as i32 * 22;
        let mut size = f64::from(((height - top - PAD - below) * 7 / 10).clamp(16, 60));
        let value = format_value(self.value, spec.unit, &spec.currency);
        while size > 14.0 && text_width(&value, size, true) > room {
            size -= 2.0;
        }
        let value_centre = top + (size * 0.55) as i32;
        draw_text(
            area,
            &fit(&value, room, size, true),
            (PAD, value_centre),
            &text_style(size, true, INK, HPos::Left, VPos::Center),
        )?;

        let mut y = value_centre + (size * 0.55) as i32 + 14;
        if let Some(previous) = self.previous {
            let (text, color) = self.change(previous, spec);
            draw_text(
                area,
                &fit(&text, room, TEXT_SIZE, false),
                (PAD, y),
                &text_style(TEXT_SIZE, false, color, HPos::Left, VPos::Center),
            )?;
            y += 22;
        }
        if let Some(target) = self.target {
            let mut text = format!("target {}", format_value(target, spec.unit, &spec.currency));
            if let Some(lower) = self.lower_is_better {
                let met = if lower {
                    self.value <= target
                } else {
                    self.value >= target
                };
                text.push_str(if met { " · met" } else { " · missed" });
            }
            draw_text(
                area,
                &fit(&text, room, TEXT_SIZE, false),
                (PAD, y),
                &text_style(TEXT_SIZE, false, MUTED, HPos::Left, VPos::Center),
            )?;
        }
        Ok(())
    }

    /// "▲ 12.5 % from 20 h", coloured by whether the move is an improvement.
    fn change(&self, previous: f64, spec: &ChartSpec) -> (String, RGBColor) {
        let delta = self.value - previous;
        let arrow = if delta > 0.0 {
            "▲"
        } else if delta < 0.0 {
            "▼"
        } else {
            "■"
        };
        let from = format_value(previous, spec.unit, &spec.currency);
        // Percent values change in points: 15 % → 12 % is "3 pp", not "-20 %".
        let amount = if spec.unit == Unit::Percent {
            format!(
                "{} pp",
                format_in_unit(delta.abs() * 100.0, Unit::Number, "", Some(1))
            )
        } else if previous != 0.0 {
            format!(
                "{} %",
                format_in_unit(
                    (delta / previous.abs() * 100.0).abs(),
                    Unit::Number,
                    "",
                    Some(1)
                )
            )
        } else {
            format_value(delta.abs(), spec.unit, &spec.currency)
        };
        let color = match self.lower_is_better {
            _ if delta == 0.0 => MUTED,
            Some(lower) if (delta < 0.0) == lower => GOOD,
            Some(_) => BAD,
            None => MUTED,
        };
        (format!("{arrow} {amount} from {from}"), color)
    }
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// At most this many rows: the grid is a glance in an email, the page has the full table.
const MAX_ROWS: usize = 20;
const ROW_HEIGHT: i32 = 20;

pub(crate) struct TableGrid {
    header: Vec<String>,
    /// Cells by column.
    columns: Vec<Vec<String>>,
    numeric: Vec<bool>,
    rows: usize,
}

impl TableGrid {
    pub fn read(table: &Table) -> Result<Option<Self>, ChartError> {
        if table.rows() == 0 {
            return Ok(None);
        }
        let header = table.column_names();
        let mut columns = Vec::with_capacity(header.len());
        let mut numeric = Vec::with_capacity(header.len());
        for name in &header {
            let data_type = table.data_type(name);
            let is_number = data_type.as_ref().is_some_and(DataType::is_numeric);
            // Floats and decimals print like the charts' numbers, not with every digit.
            let cells = if data_type.as_ref().is_some_and(|t| {
                t.is_floating() || matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..))
            }) {
                table
                    .numbers(name)?
                    .into_iter()
                    .map(|v| {
                        v.map(|v| format_in_unit(v, Unit::Number, "", None))
                            .unwrap_or_default()
                    })
                    .collect()
            } else {
                table.display_cells(name)?
            };
            columns.push(cells);
            numeric.push(is_number);
        }
        Ok(Some(Self {
            header,
            columns,
            numeric,
            rows: table.rows(),
        }))
    }

    pub fn draw<DB: DrawingBackend>(
        &self,
        area: &Area<DB>,
        spec: &ChartSpec,
    ) -> Result<(), ChartError> {
        let top = canvas::draw_frame(area, spec)?;
        let (width, height) = area.dim_in_pixel();
        let (width, height) = (width as i32, height as i32);
        let fits = ((height - top - PAD) / ROW_HEIGHT - 1).max(1) as usize;
        let mut shown = self.rows.min(MAX_ROWS).min(fits);
        if shown < self.rows && shown == fits {
            // The "more rows" line takes a row's place.
            shown = shown.saturating_sub(1).max(1);
        }
        let widths = self.column_widths(width - 2 * PAD, shown);

        area.draw(&Rectangle::new(
            [(PAD, top), (width - PAD, top + ROW_HEIGHT)],
            GRID.filled(),
        ))
        .map_err(canvas::render_error)?;
        for row in 0..=shown {
            let y = top + ROW_HEIGHT * row as i32 + ROW_HEIGHT / 2;
            let mut x = PAD;
            for (column, column_width) in widths.iter().enumerate() {
                let (text, bold) = if row == 0 {
                    (&self.header[column], true)
                } else {
                    (&self.columns[column][row - 1], false)
                };
                let cell = fit(text, column_width - 12, TEXT_SIZE - 1.0, bold);
                let (anchor, at) = if self.numeric[column] {
                    (HPos::Right, x + column_width - 6)
                } else {
                    (HPos::Left, x + 6)
                };
                draw_text(
                    area,
                    &cell,
                    (at, y),
                    &text_style(TEXT_SIZE - 1.0, bold, INK, anchor, VPos::Center),
                )?;
                x += column_width;
            }
            let rule = top + ROW_HEIGHT * (row as i32 + 1);
            area.draw(&PathElement::new(
                vec![(PAD, rule), (width - PAD, rule)],
                GRID.stroke_width(1),
            ))
            .map_err(canvas::render_error)?;
        }
        if shown < self.rows {
            let more = format!("… {} more rows", self.rows - shown);
            let y = top + ROW_HEIGHT * (shown as i32 + 1) + ROW_HEIGHT / 2;
            draw_text(
                area,
                &more,
                (PAD + 6, y),
                &text_style(TEXT_SIZE - 1.0, false, MUTED, HPos::Left, VPos::Center),
            )?;
        }
        Ok(())
    }

    /// Each column as wide as its widest shown cell, the widest ones narrowed to share what is
    /// left when they do not all fit.
    fn column_widths(&self, room: i32, shown: usize) -> Vec<i32> {
        let natural: Vec<i32> = self
            .header
            .iter()
            .zip(&self.columns)
            .map(|(header, cells)| {
                cells
                    .iter()
                    .take(shown)
                    .map(|c| text_width(c, TEXT_SIZE - 1.0, false))
                    .chain([text_width(header, TEXT_SIZE - 1.0, true)])
                    .max()
                    .unwrap_or(0)
                    + 12
            })
            .collect();
        let mut widths = natural.clone();
        let mut order: Vec<usize> = (0..natural.len()).collect();
        order.sort_by_key(|&i| natural[i]);
        let mut left = room;
        for (placed, &i) in order.iter().enumerate() {
            let share = left / (order.len() - placed) as i32;
            widths[i] = natural[i].min(share).max(24);
            left -= widths[i];
        }
        widths
    }
}
