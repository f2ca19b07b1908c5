// Everything of weft::http in one include: the server, router, requests and responses, the
// client and its resilience helpers, and the parsers under them.
//
// Thread safety: stated in each header included here.
//
// Cancellation: stated in each header included here.
#pragma once

#include <weft/http/chunked_decoder.hpp>
#include <weft/http/client.hpp>
#include <weft/http/error.hpp>
#include <weft/http/handler.hpp>
#include <weft/http/limits.hpp>
#include <weft/http/message_head.hpp>
#include <weft/http/parse_error.hpp>
#include <weft/http/request.hpp>
#include <weft/http/request_parser.hpp>
#include <weft/http/response.hpp>
#include <weft/http/response_parser.hpp>
#include <weft/http/retryable.hpp>
#include <weft/http/router.hpp>
#include <weft/http/server.hpp>
#include <weft/http/url.hpp>
