"""Sans-IO protocol layer for the HPC Pack REST web service.

Contract: pure and synchronous. This package never imports aiohttp, asyncio, sockets or
clocks; it turns wire bytes into typed values and back, and raises only ``ProtocolError``
subclasses (plus ``ValueError``-compatible ``EncodeError``) on bad input. Both the client and
the emulator build on it.
"""

from ._datacontract import decode_fault as decode_fault
from ._datacontract import decode_int as decode_int
from ._datacontract import decode_object_array as decode_object_array
from ._datacontract import decode_property_array as decode_property_array
from ._datacontract import decode_string as decode_string
from ._datacontract import decode_string_array as decode_string_array
from ._datacontract import decode_version_array as decode_version_array
from ._datacontract import encode_fault_json as encode_fault_json
from ._datacontract import encode_fault_xml as encode_fault_xml
from ._datacontract import encode_int as encode_int
from ._datacontract import encode_legacy_fault as encode_legacy_fault
from ._datacontract import encode_object_array as encode_object_array
from ._datacontract import encode_property_array as encode_property_array
from ._datacontract import encode_string as encode_string
from ._datacontract import encode_string_array as encode_string_array
from ._datacontract import encode_version_array as encode_version_array
from ._dates import format_net_bool as format_net_bool
from ._dates import format_net_datetime as format_net_datetime
from ._dates import parse_net_bool as parse_net_bool
from ._dates import parse_net_datetime as parse_net_datetime
from ._errors import IDEMPOTENT_OPERATIONS as IDEMPOTENT_OPERATIONS
from ._errors import SOA_FAULT_CODES as SOA_FAULT_CODES
from ._errors import error_from_response as error_from_response
from ._errors import fault_category as fault_category
from ._errors import fault_code_name as fault_code_name
from ._errors import is_retryable as is_retryable
from ._errors import parse_retry_after as parse_retry_after
from ._errors import retry_after_from_headers as retry_after_from_headers
from ._generic import DEFAULT_MAX_RECORD_BYTES as DEFAULT_MAX_RECORD_BYTES
from ._generic import SEPARATOR as SEPARATOR
from ._generic import TERMINATOR as TERMINATOR
from ._generic import GenericRequestDecoder as GenericRequestDecoder
from ._generic import GenericResponseDecoder as GenericResponseDecoder
from ._generic import GenericResponseFieldsDecoder as GenericResponseFieldsDecoder
from ._generic import ResponseFields as ResponseFields
from ._generic import encode_generic_request as encode_generic_request
from ._generic import encode_generic_requests as encode_generic_requests
from ._generic import encode_generic_response as encode_generic_response
from ._generic import encode_generic_trailer as encode_generic_trailer
from ._generic import verify_end_count as verify_end_count
from ._models import (
    END_OF_GET_RESPONSE_ACTION as END_OF_GET_RESPONSE_ACTION,
)
from ._models import (
    GENERIC_NAMESPACE as GENERIC_NAMESPACE,
)
from ._models import (
    GENERIC_REPLY_ACTION as GENERIC_REPLY_ACTION,
)
from ._models import (
    GENERIC_REQUEST_ACTION as GENERIC_REQUEST_ACTION,
)
from ._models import BrokerClientStatus as BrokerClientStatus
from ._models import EndOfResponses as EndOfResponses
from ._models import EndOfResponsesReason as EndOfResponsesReason
from ._models import GenericRequest as GenericRequest
from ._models import GenericResponse as GenericResponse
from ._models import HttpRequest as HttpRequest
from ._models import ServiceVersion as ServiceVersion
from ._models import SessionInfo as SessionInfo
from ._models import SessionStartInfo as SessionStartInfo
from ._models import SoaFault as SoaFault
from ._models import SoapRequest as SoapRequest
from ._models import SoapResponse as SoapResponse
from ._models import WebServiceFault as WebServiceFault
from ._paging import CONTINUATION_HEADER as CONTINUATION_HEADER
from ._paging import continuation_token as continuation_token
from ._paging import with_continuation as with_continuation
from ._routes import DEFAULT_API_VERSION as DEFAULT_API_VERSION
from ._routes import ApiVersion as ApiVersion
from ._routes import Operation as Operation
from ._routes import Route as Route
from ._routes import RouteMatch as RouteMatch
from ._routes import UriForm as UriForm
from ._routes import build_request as build_request
from ._routes import match_route as match_route
from ._routes import parse_bool as parse_bool
from ._routes import query_lookup as query_lookup
from ._routes import resolve_api_version as resolve_api_version
from ._routes import route_for as route_for
from ._session_codec import decode_broker_status as decode_broker_status
from ._session_codec import decode_session_info as decode_session_info
from ._session_codec import decode_session_start_info as decode_session_start_info
from ._session_codec import encode_broker_status_json as encode_broker_status_json
from ._session_codec import encode_broker_status_xml as encode_broker_status_xml
from ._session_codec import encode_session_info_json as encode_session_info_json
from ._session_codec import encode_session_info_xml as encode_session_info_xml
from ._session_codec import encode_session_start_info_json as encode_session_start_info_json
from ._session_codec import encode_session_start_info_xml as encode_session_start_info_xml
from ._soap import DEFAULT_MAX_ENVELOPE_BYTES as DEFAULT_MAX_ENVELOPE_BYTES
from ._soap import REQUEST_ARRAY_CLOSE as REQUEST_ARRAY_CLOSE
from ._soap import REQUEST_ARRAY_OPEN as REQUEST_ARRAY_OPEN
from ._soap import RESPONSE_ARRAY_CLOSE as RESPONSE_ARRAY_CLOSE
from ._soap import RESPONSE_ARRAY_OPEN as RESPONSE_ARRAY_OPEN
from ._soap import SoapRequestArrayDecoder as SoapRequestArrayDecoder
from ._soap import SoapResponseDecoder as SoapResponseDecoder
from ._soap import encode_end_of_responses as encode_end_of_responses
from ._soap import encode_request_array as encode_request_array
from ._soap import encode_soap_fault_response as encode_soap_fault_response
from ._soap import encode_soap_request as encode_soap_request
from ._soap import encode_soap_response as encode_soap_response
from ._soap import fault_action as fault_action
from ._soap import fault_body as fault_body
from ._soap import new_message_id as new_message_id
from ._soap import parse_wcf_body as parse_wcf_body
from ._soap import wcf_body as wcf_body
from ._soap import wcf_reply_body as wcf_reply_body
from ._xml import check_safe as check_safe
from ._xml import parse_xml as parse_xml
