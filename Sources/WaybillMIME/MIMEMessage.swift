internal import CGMime
