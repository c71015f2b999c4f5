//! The PNG backend: plotters' bitmap backend with text drawn by ab_glyph directly. Plotters'
//! own ab_glyph text ignores each glyph's side bearing ("Deploym ents") and sets the baseline
//! differently from its SVG; this places glyphs at their outline bounds and puts the baseline
//! where the SVG backend's `dy` puts it, so both formats read alike.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use plotters::backend::BitMapBackend;
use plotters_backend::text_anchor::{HPos, VPos};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingBackend, DrawingErrorKind,
    FontStyle,
};

use super::canvas::{BOLD, REGULAR};

/// DejaVu Sans' x-height as a share of its em (sxHeight 1120 of 2048): the SVG's `ex`.
const X_HEIGHT: f32 = 0.547;
/// Plotters' SVG backend writes `font-size` as the text size divided by this.
const SVG_EM: f32 = 1.24;

pub(crate) struct PngCanvas<'a> {
    bitmap: BitMapBackend<'a>,
}

impl<'a> PngCanvas<'a> {
    pub fn new(rgb: &'a mut [u8], size: (u32, u32)) -> Self {
        Self {
            bitmap: BitMapBackend::with_buffer(rgb, size),
        }
    }
}

fn font(bold: bool) -> Option<&'static FontRef<'static>> {
    static FONTS: OnceLock<Option<(FontRef<'static>, FontRef<'static>)>> = OnceLock::new();
    let fonts = FONTS.get_or_init(|| {
        Some((
            FontRef::try_from_slice(REGULAR).ok()?,
            FontRef::try_from_slice(BOLD).ok()?,
        ))
    });
    fonts
        .as_ref()
        .map(|(regular, bold_font)| if bold { bold_font } else { regular })
}

type Failure<'a> = DrawingErrorKind<<BitMapBackend<'a> as DrawingBackend>::ErrorType>;

impl<'a> DrawingBackend for PngCanvas<'a> {
    type ErrorType = <BitMapBackend<'a> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.bitmap.get_size()
    }
    fn ensure_prepared(&mut self) -> Result<(), Failure<'a>> {
        self.bitmap.ensure_prepared()
    }
    fn present(&mut self) -> Result<(), Failure<'a>> {
        self.bitmap.present()
    }
    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> Result<(), Failure<'a>> {
        self.bitmap.draw_pixel(point, color)
    }
    fn draw_line<S: BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> Result<(), Failure<'a>> {
        self.bitmap.draw_line(from, to, style)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> Result<(), Failure<'a>> {
        self.bitmap.draw_rect(upper_left, bottom_right, style, fill)
    }
    fn draw_path<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> Result<(), Failure<'a>> {
        self.bitmap.draw_path(path, style)
    }
    fn draw_circle<S: BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> Result<(), Failure<'a>> {
        self.bitmap.draw_circle(center, radius, style, fill)
    }
    fn fill_polygon<S: BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> Result<(), Failure<'a>> {
        self.bitmap.fill_polygon(vert, style)
    }
    fn blit_bitmap(
        &mut self,
        pos: BackendCoord,
        size: (u32, u32),
        src: &[u8],
    ) -> Result<(), Failure<'a>> {
        self.bitmap.blit_bitmap(pos, size, src)
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> Result<(), Failure<'a>> {
        let color = style.color();
        let Some(font) = font(matches!(style.style(), FontStyle::Bold)) else {
            return self.bitmap.draw_text(text, style, pos);
        };
        let size = style.size() as f32;
        // The scale plotters measured the text with, so the layout's widths hold.
        let scaled = font.as_scaled(PxScale::from(size));
        let mut width = 0.0f32;
        let mut previous = None;
        for c in text.chars() {
            let glyph = scaled.glyph_id(c);
            if let Some(previous) = previous {
                width += scaled.kern(previous, glyph);
            }
            width += scaled.h_advance(glyph);
            previous = Some(glyph);
        }
        let x = pos.0 as f32
            - match style.anchor().h_pos {
                HPos::Left => 0.0,
                HPos::Center => width / 2.0,
                HPos::Right => width,
            };
        let em = size / SVG_EM;
        let baseline = pos.1 as f32
            + match style.anchor().v_pos {
                VPos::Top => 0.76 * em,
                VPos::Center => 0.5 * X_HEIGHT * em,
                VPos::Bottom => -0.5 * X_HEIGHT * em,
            };
        let mut pen = x;
        let mut previous = None;
        for c in text.chars() {
            let id = scaled.glyph_id(c);
            if let Some(previous) = previous {
                pen += scaled.kern(previous, id);
            }
            previous = Some(id);
            let glyph = id.with_scale_and_position(PxScale::from(size), point(pen, baseline));
            pen += scaled.h_advance(id);
            let Some(outline) = font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outline.px_bounds();
            let mut pixels = Vec::new();
            outline.draw(|gx, gy, coverage| pixels.push((gx, gy, coverage)));
            for (gx, gy, coverage) in pixels {
                if coverage <= 0.0 {
                    continue;
                }
                let at = (
                    bounds.min.x as i32 + gx as i32,
                    bounds.min.y as i32 + gy as i32,
                );
                let ink = BackendColor {
                    alpha: color.alpha * f64::from(coverage.min(1.0)),
                    rgb: color.rgb,
                };
                self.bitmap.draw_pixel(at, ink)?;
            }
        }
        Ok(())
    }
}
