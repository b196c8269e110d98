"""One way to page a list: ``?page=N`` (and ``?per_page=``), bounded, and a link to each page
that keeps every other filter of the address (the ``pager`` macro in ``_macros.html``).

A page number or size that is not a whole number in range is a 400, never a 500; a page past the
end shows the last page's neighbourhood as empty with a link back (the list may have shrunk).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import request, url_for

from govern.api import query_int

PER_PAGE = 20
MAX_PER_PAGE = 200
MAX_PAGE = 1_000_000


@dataclass
class Page:
    rows: list
    number: int
    size: int
    total: int
    # The address argument that names the page (two lists on one page page apart).
    param: str = "page"

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        """The 1-based position of the page's first row (0 on an empty page)."""
        return (self.number - 1) * self.size + 1 if self.rows else 0

    @property
    def last(self) -> int:
        return self.first + len(self.rows) - 1 if self.rows else 0

    def __iter__(self):
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __bool__(self) -> bool:
        return bool(self.rows)


def page_args(per_page: int = PER_PAGE, param: str = "page") -> tuple[int, int]:
    """The page asked for and its size, from the address (400 when out of bounds)."""
    number = query_int(param, 1, 1, MAX_PAGE)
    size = query_int("per_page", per_page, 1, MAX_PER_PAGE)
    return number, size


def paged_call(find, per_page: int = PER_PAGE, param: str = "page") -> Page:
    """A page from a service that pages itself: ``find(offset, limit)`` -> (rows, total)."""
    number, size = page_args(per_page, param)
    rows, total = find((number - 1) * size, size)
    return Page(rows, number, size, total, param)


def paged_list(rows: list, per_page: int = PER_PAGE, param: str = "page") -> Page:
    """One page of a list already read (lists built from several sources, or narrowed by a
    state computed in Python)."""
    number, size = page_args(per_page, param)
    start = (number - 1) * size
    return Page(rows[start : start + size], number, size, len(rows), param)


def page_url(number: int, param: str = "page") -> str:
    """This address with another page number, every other argument kept."""
    args = request.args.to_dict()
    args[param] = number
    return url_for(request.endpoint, **(request.view_args or {}), **args)
