"""The pieces the figure scripts share: a standalone SVG with a title, a frame with a y axis, and legend entries.

No plotting library is needed; the scripts compute their own coordinates and call these for the common parts.
"""

from __future__ import annotations

from html import escape


def open_svg(width: int, height: int, title: str, title_x: float, title_y: float) -> list[str]:
    """The opening tag, a white background and the title: the first parts of a figure."""
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{title_x}" y="{title_y}">{escape(title)}</text>',
    ]


def frame(left: float, top: float, width: float, height: float, y_label: str) -> list[str]:
    """The plot's outline and the rotated label of its y axis."""
    middle = top + height / 2
    return [
        f'<text x="14" y="{middle}" transform="rotate(-90 14 {middle})" text-anchor="middle">{escape(y_label)}</text>',
        f'<rect x="{left}" y="{top}" width="{width}" height="{height}" fill="none" stroke="#333"/>',
    ]


def legend_entry(x: float, y: float, colour: str, text: str) -> list[str]:
    """A short thick line of ``colour`` at (x, y - 4) and ``text`` beside it."""
    return [
        f'<line x1="{x}" x2="{x + 20}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" stroke-width="3"/>',
        f'<text x="{x + 26}" y="{y}">{escape(text)}</text>',
    ]
