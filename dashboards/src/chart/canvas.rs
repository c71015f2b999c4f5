//! What every chart draws with: the font, the palette, text that fits, the title and the "no data"
//! panel, legends, and reference lines. Generic over the backend so SVG and PNG lay out alike.

use std::fmt::Display;
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{ChartError, ChartSpec};

/// The family name given to plotters and written into SVG: a CSS list, so a page without
/// DejaVu falls back to its sans-serif; the PNG renders from the embedded font under this key.
pub(crate) const FAMILY: &str = "DejaVu Sans, sans-serif";

pub(crate) static REGULAR: &[u8] = include_bytes!("../../fonts/DejaVuSans.ttf");
pub(crate) static BOLD: &[u8] = include_bytes!("../../fonts/DejaVuSans-Bold.ttf");

/// Registers the embedded font with plotters once per process.
pub(crate) fn register_fonts() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FAMILY, FontStyle::Normal, REGULAR).is_ok()
            && plotters::style::register_font(FAMILY, FontStyle::Bold, BOLD).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(ChartError::Render(
            "the embedded DejaVu font did not load".to_owned(),
        ))
    }
}

/// Okabe–Ito, distinguishable with the common colour-vision deficiencies.
pub(crate) const PALETTE: [RGBColor; 8] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0xF0, 0xE4, 0x42),
    RGBColor(0x00, 0x00, 0x00),
];
/// The "other" band of a stacked chart: grey, so it reads as the remainder, not a series.
pub(crate) const OTHER: RGBColor = RGBColor(0xA0, 0xA0, 0xA0);
pub(crate) const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
pub(crate) const MUTED: RGBColor = RGBColor(0x66, 0x66, 0x66);
pub(crate) const GRID: RGBColor = RGBColor(0xE4, 0xE4, 0xE4);
pub(crate) const AXIS: RGBColor = RGBColor(0x99, 0x99, 0x99);
pub(crate) const GOOD: RGBColor = PALETTE[2];
pub(crate) const BAD: RGBColor = PALETTE[3];

pub(crate) const TEXT_SIZE: f64 = 13.0;
pub(crate) const TITLE_SIZE: f64 = 16.0;
/// Space kept clear at every edge.
pub(crate) const PAD: i32 = 12;

pub(crate) type Area<DB> = DrawingArea<DB, Shift>;

pub(crate) fn render_error(error: impl Display) -> ChartError {
    ChartError::Render(error.to_string())
}

pub(crate) fn font(size: f64, bold: bool) -> FontDesc<'static> {
    let style = if bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    };
    FontDesc::new(FontFamily::Name(FAMILY), size, style)
}

pub(crate) fn text_style(
    size: f64,
    bold: bool,
    color: RGBColor,
    h: HPos,
    v: VPos,
) -> TextStyle<'static> {
    TextStyle {
        font: font(size, bold),
        color: color.to_backend_color(),
        pos: Pos::new(h, v),
    }
}

/// Width in pixels of `text` as drawn (the same on both backends: both measure with ab_glyph).
pub(crate) fn text_width(text: &str, size: f64, bold: bool) -> i32 {
    font(size, bold)
        .box_size(text)
        .map(|(w, _)| w as i32)
        .unwrap_or(text.chars().count() as i32 * size as i32 * 6 / 10)
}

/// `text` cut to `max_width` pixels with an ellipsis.
/// Control characters are dropped: XML cannot carry them and fonts have no glyph for them.
pub(crate) fn fit(text: &str, max_width: i32, size: f64, bold: bool) -> String {
    let mut chars: Vec<char> = text.chars().filter(|c| !c.is_control()).collect();
    let text: String = chars.iter().collect();
    if text_width(&text, size, bold) <= max_width {
        return text;
    }
    while !chars.is_empty() {
        chars.pop();
        let candidate: String = chars.iter().collect::<String>().trim_end().to_owned() + "…";
        if text_width(&candidate, size, bold) <= max_width {
            return candidate;
        }
    }
    String::new()
}

pub(crate) fn draw_text<DB: DrawingBackend>(
    area: &Area<DB>,
    text: &str,
    at: (i32, i32),
    style: &TextStyle<'static>,
) -> Result<(), ChartError> {
    area.draw(&Text::new(text.to_owned(), at, style.clone()))
        .map_err(render_error)
}

/// White background and the title; returns the y below the title where content begins.
pub(crate) fn draw_frame<DB: DrawingBackend>(
    area: &Area<DB>,
    spec: &ChartSpec,
) -> Result<i32, ChartError> {
    draw_frame_beside(area, spec, 0)
}

/// [`draw_frame`] leaving `reserved` pixels free at the title's right (a tile's level badge): a
/// title too long for the rest is drawn smaller (down to 3/4 of its size), then shortened.
pub(crate) fn draw_frame_beside<DB: DrawingBackend>(
    area: &Area<DB>,
    spec: &ChartSpec,
    reserved: i32,
) -> Result<i32, ChartError> {
    area.fill(&WHITE).map_err(render_error)?;
    let (width, _) = area.dim_in_pixel();
    let room = width as i32 - 2 * PAD - reserved;
    let mut size = TITLE_SIZE;
    while size > TITLE_SIZE * 0.75 && text_width(&spec.title, size, true) > room {
        size -= 0.5;
    }
    let title = fit(&spec.title, room, size, true);
    if title.is_empty() {
        return Ok(PAD);
    }
    draw_text(
        area,
        &title,
        (PAD, PAD + 10),
        &text_style(size, true, INK, HPos::Left, VPos::Center),
    )?;
    Ok(PAD + 30)
}

/// The panel drawn when the selection has no rows (or only nulls): title and a plain sentence.
pub(crate) fn draw_no_data<DB: DrawingBackend>(
    area: &Area<DB>,
    spec: &ChartSpec,
) -> Result<(), ChartError> {
    let top = draw_frame(area, spec)?;
    let (width, height) = area.dim_in_pixel();
    let middle = (top + height as i32) / 2;
    let message = fit(
        "No data for this selection",
        width as i32 - 2 * PAD,
        TEXT_SIZE,
        false,
    );
    draw_text(
        area,
        &message,
        (width as i32 / 2, middle),
        &text_style(TEXT_SIZE, false, MUTED, HPos::Center, VPos::Center),
    )
}

/// How a legend entry shows its series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Mark {
    Line,
    Dashed,
    Swatch,
}

#[derive(Debug, Clone)]
pub(crate) struct LegendEntry {
    pub label: String,
    pub color: RGBColor,
    pub mark: Mark,
}

const LEGEND_ROW: i32 = 20;
const LEGEND_MARK: i32 = 18;
const LEGEND_GAP: i32 = 16;
const LEGEND_MAX_ROWS: i32 = 3;

/// Lays the entries out in rows under the title; returns the y below the legend.
pub(crate) fn draw_legend<DB: DrawingBackend>(
    area: &Area<DB>,
    entries: &[LegendEntry],
    top: i32,
) -> Result<i32, ChartError> {
    if entries.len() < 2 {
        return Ok(top);
    }
    let (width, _) = area.dim_in_pixel();
    let right = width as i32 - PAD;
    let style = text_style(TEXT_SIZE - 1.0, false, INK, HPos::Left, VPos::Center);
    let (mut x, mut y, mut row) = (PAD, top + LEGEND_ROW / 2, 1);
    for (i, entry) in entries.iter().enumerate() {
        let label = fit(&entry.label, (right - PAD) / 2, TEXT_SIZE - 1.0, false);
        let item = LEGEND_MARK + 6 + text_width(&label, TEXT_SIZE - 1.0, false);
        if x > PAD && x + item > right {
            // The legend must leave the plot its room: past a few rows, the rest are counted.
            if row == LEGEND_MAX_ROWS {
                let more = format!("+{} more", entries.len() - i);
                draw_text(
                    area,
                    &more,
                    (x.min(right - text_width(&more, TEXT_SIZE - 1.0, false)), y),
                    &style,
                )?;
                break;
            }
            x = PAD;
            y += LEGEND_ROW;
            row += 1;
        }
        match entry.mark {
            Mark::Swatch => area
                .draw(&Rectangle::new(
                    [(x, y - 5), (x + LEGEND_MARK - 6, y + 5)],
                    entry.color.filled(),
                ))
                .map_err(render_error)?,
            Mark::Line => area
                .draw(&PathElement::new(
                    vec![(x, y), (x + LEGEND_MARK, y)],
                    entry.color.stroke_width(3),
                ))
                .map_err(render_error)?,
            Mark::Dashed => dashed(area, (x, y), (x + LEGEND_MARK, y), entry.color, 2)?,
        }
        draw_text(area, &label, (x + LEGEND_MARK + 6, y), &style)?;
        x += item + LEGEND_GAP;
    }
    Ok(y + LEGEND_ROW / 2 + 4)
}

pub(crate) fn dashed<DB: DrawingBackend>(
    area: &Area<DB>,
    from: (i32, i32),
    to: (i32, i32),
    color: RGBColor,
    width: u32,
) -> Result<(), ChartError> {
    area.draw(&DashedPathElement::new(
        vec![from, to],
        6,
        4,
        color.stroke_width(width),
    ))
    .map_err(render_error)
}

/// A polyline broken at gaps (`None`); lone points become dots so they stay visible.
pub(crate) fn polyline<DB: DrawingBackend>(
    area: &Area<DB>,
    points: &[Option<(i32, i32)>],
    color: RGBColor,
    is_dashed: bool,
    dots: bool,
) -> Result<(), ChartError> {
    for run in points.split(Option::is_none) {
        let run: Vec<(i32, i32)> = run.iter().flatten().copied().collect();
        match run.as_slice() {
            [] => {}
            [point] => area
                .draw(&Circle::new(*point, 3, color.filled()))
                .map_err(render_error)?,
            _ if is_dashed => area
                .draw(&DashedPathElement::new(
                    run.clone(),
                    6,
                    4,
                    color.stroke_width(2),
                ))
                .map_err(render_error)?,
            _ => area
                .draw(&PathElement::new(run.clone(), color.stroke_width(2)))
                .map_err(render_error)?,
        }
        if dots && run.len() > 1 {
            for point in &run {
                area.draw(&Circle::new(*point, 3, color.filled()))
                    .map_err(render_error)?;
            }
        }
    }
    Ok(())
}

/// Whether a dot per point helps: only when they are spread out enough to be told apart.
pub(crate) fn wants_dots(points: usize, plot_width: i32) -> bool {
    points > 0 && plot_width / points as i32 >= 14
}
