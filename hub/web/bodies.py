"""Reading a request body whole, up to a limit: ``StreamReader.read(n)`` returns what has
arrived so far, which for a body of a few hundred kilobytes is only its first chunks."""

from aiohttp import web

CHUNK_BYTES = 64 * 1024


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None when it is over ``limit`` bytes (said or found)."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_chunked(CHUNK_BYTES):
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)
