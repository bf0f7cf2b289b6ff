//! Source text, byte spans and their line/column view.

use std::sync::Arc;

/// A half-open byte range `[start, end)` into a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end: end.max(start) }
    }

    pub fn len(self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }

    pub(crate) fn to_miette(self) -> miette::SourceSpan {
        (self.start, self.len()).into()
    }
}

/// 1-based line and column; the column counts characters, as editors and SARIF viewers do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

/// A named source file, kept as text (lossy for non-UTF-8 input, which is itself a finding).
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// The path as the user gave it: what every output format prints.
    pub path: String,
    pub(crate) named: miette::NamedSource<Arc<str>>,
    text: Arc<str>,
    line_starts: Arc<[usize]>,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, text: impl Into<Arc<str>>) -> SourceFile {
        let path = path.into();
        let text: Arc<str> = text.into();
        let line_starts: Arc<[usize]> =
            std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect();
        let named = miette::NamedSource::new(path.clone(), text.clone()).with_language("yaml");
        SourceFile { path, named, text, line_starts }
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// Line and column of a byte offset (clamped to the text, snapped to a char boundary).
    pub fn line_col(&self, offset: usize) -> LineCol {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line_index = self.line_starts.partition_point(|&start| start <= offset) - 1;
        let line_start = self.line_starts[line_index];
        let column = self.text[line_start..offset].chars().count() + 1;
        LineCol { line: line_index + 1, column }
    }

    /// Byte offset of a 1-based line and character column (clamped to the text).
    pub fn offset_of(&self, line: usize, column: usize) -> usize {
        let Some(&line_start) = self.line_starts.get(line.saturating_sub(1)) else {
            return self.text.len();
        };
        let line_text = &self.text[line_start..];
        let line_end = line_text.find('\n').map_or(self.text.len(), |i| line_start + i);
        let within = self.text[line_start..line_end]
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(line_end, |(i, _)| line_start + i);
        within.min(line_end)
    }

    /// Start and end of a span as line/column; an empty span ends where it starts.
    pub fn range(&self, span: Span) -> (LineCol, LineCol) {
        let start = self.line_col(span.start);
        let end = if span.is_empty() { start } else { self.line_col(span.end) };
        (start, end)
    }

    /// The 1-based line the offset is on, as text without its newline.
    pub fn line_text(&self, line: usize) -> &str {
        let Some(&start) = self.line_starts.get(line.saturating_sub(1)) else {
            return "";
        };
        let rest = &self.text[start..];
        rest.split('\n').next().unwrap_or("").trim_end_matches('\r')
    }

    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_characters_and_lines() {
        let src = SourceFile::new("a.yaml", "ab\nçd: x\n");
        assert_eq!(src.line_col(0), LineCol { line: 1, column: 1 });
        assert_eq!(src.line_col(3), LineCol { line: 2, column: 1 });
        // 'ç' is two bytes, so byte 5 ('d') is the second character on line 2.
        assert_eq!(src.line_col(5), LineCol { line: 2, column: 2 });
        assert_eq!(src.offset_of(2, 2), 5);
        assert_eq!(src.line_text(2), "çd: x");
    }

    #[test]
    fn offsets_past_the_end_are_clamped() {
        let src = SourceFile::new("a.yaml", "a");
        assert_eq!(src.line_col(99), LineCol { line: 1, column: 2 });
        assert_eq!(src.offset_of(7, 1), 1);
    }
}
