"""Python client of the tradepact services.

Trade figures come back as pandas DataFrames (one row per period, series value, balance row,
query cell or revision), negotiations as plain dicts (the protobuf messages with their field
names), streams as iterators. Every call has a deadline (``timeout``, 30 s by default) and
raises :class:`Error` with the gRPC code, the message and any field violations.

    >>> import tradepact
    >>> with tradepact.connect_data("127.0.0.1:50051") as data:
    ...     data.balance("USA", "KOR", start="2011", end="2017")

The stubs (``tradepact.data.v1``, ``tradepact.negotiation.v1``) are generated from the
repository's ``proto/`` when the package is built.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import grpc
import pandas as pd
from google.protobuf import json_format
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tradepact.data.v1 import data_service_pb2 as data_pb
from tradepact.data.v1 import data_service_pb2_grpc as data_rpc
from tradepact.negotiation.v1 import negotiation_service_pb2 as negotiation_pb
from tradepact.negotiation.v1 import negotiation_service_pb2_grpc as negotiation_rpc

__all__ = [
    "DataClient",
    "Error",
    "NegotiationClient",
    "connect_data",
    "connect_negotiation",
    "data_pb",
    "negotiation_pb",
]

PathLike = Union[str, pathlib.Path]


@dataclass
class Error(Exception):
    """A call that failed: its gRPC status code, message and, for ``INVALID_ARGUMENT``, the
    field violations (field path, description) the server attached."""

    code: grpc.StatusCode
    message: str
    violations: List[Tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        return f"{self.code.name}: {self.message}"


def _error(e: grpc.RpcError) -> Error:
    code = e.code() if hasattr(e, "code") else grpc.StatusCode.UNKNOWN
    details = e.details() if hasattr(e, "details") else str(e)
    violations: List[Tuple[str, str]] = []
    status = rpc_status.from_call(e) if isinstance(e, grpc.Call) else None
    for detail in status.details if status is not None else []:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            violations += [(v.field, v.description) for v in bad.field_violations]
    return Error(code, details or "", violations)


def _channel(
    target: str,
    ca: Optional[PathLike],
    cert: Optional[PathLike],
    key: Optional[PathLike],
    options: Sequence[tuple],
) -> grpc.Channel:
    if target.startswith("https://"):
        read = lambda path: pathlib.Path(path).read_bytes() if path is not None else None  # noqa: E731
        credentials = grpc.ssl_channel_credentials(read(ca), read(key), read(cert))
        return grpc.secure_channel(target[len("https://"):], credentials, options)
    if cert is not None or key is not None:
        raise ValueError("a client certificate needs an https:// target")
    return grpc.insecure_channel(target.removeprefix("http://"), options)


def _enum(enum: Any, prefix: str, name: Optional[str]) -> int:
    """`"import"` → `FLOW_IMPORT`; None → unspecified."""
    if name is None:
        return 0
    return enum.Value(f"{prefix}_{name.upper().replace('-', '_')}")


def _plain(message: Message) -> Dict[str, Any]:
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )


class _Client:
    """A connection to one service: ``token`` (bearer), ``ca`` (a PEM file, for https://
    targets), ``cert`` and ``key`` (mutual TLS), ``timeout`` (seconds, every call)."""

    _stub: Any = None

    def __init__(
        self,
        target: str,
        *,
        token: Optional[str] = None,
        ca: Optional[PathLike] = None,
        cert: Optional[PathLike] = None,
        key: Optional[PathLike] = None,
        timeout: float = 30.0,
    ):
        if (cert is None) != (key is None):
            raise ValueError("give both cert= and key= for mutual TLS, or neither")
        options = [("grpc.max_receive_message_length", 16 * 1024 * 1024)]
        self._channel = _channel(target, ca, cert, key, options)
        self._metadata = [("authorization", f"Bearer {token}")] if token else []
        self.timeout = timeout
        self.stub = type(self)._stub(self._channel)

    def close(self) -> None:
        """Closes the connection."""
        self._channel.close()

    def __enter__(self):
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: Any, request: Message) -> Any:
        try:
            return method(request, timeout=self.timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise _error(e) from None

    def _stream(self, method: Any, request: Message, timeout: Optional[float]) -> Iterator[Any]:
        try:
            yield from method(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise _error(e) from None


def _key(reporter: str, partner: str, flow: str, kind: str, product: str, frequency: str) -> Message:
    return data_pb.SeriesKey(
        reporter=reporter,
        partner=partner,
        flow=_enum(data_pb.Flow, "FLOW", flow),
        kind=_enum(data_pb.TradeKind, "TRADE_KIND", kind),
        product=product,
        frequency=_enum(data_pb.Frequency, "FREQUENCY", frequency),
    )


def _period(frequency: int, ordinal: int) -> str:
    """A period ordinal of StreamSeriesColumns as its name: 2016, 2016-Q3, 2016-07."""
    if frequency == data_pb.FREQUENCY_QUARTERLY:
        return f"{ordinal // 4}-Q{ordinal % 4 + 1}"
    if frequency == data_pb.FREQUENCY_MONTHLY:
        return f"{ordinal // 12}-{ordinal % 12 + 1:02d}"
    return str(ordinal)


class DataClient(_Client):
    """The trade data service (``tradepact.data.v1.TradeDataService``)."""

    _stub = data_rpc.TradeDataServiceStub

    def write(
        self,
        reporter: str,
        partner: str,
        values: Union[Mapping[str, float], pd.Series],
        *,
        flow: str = "export",
        kind: str = "goods",
        product: str = "TOTAL",
        frequency: str = "annual",
        source: str = "",
        release: Optional[Mapping[str, str]] = None,
    ) -> Dict[str, int]:
        """Writes one series' values (period → USD), durably, as a release when one is given
        (``{"label": ..., "date": "YYYY-MM-DD", "source": ...}``). Returns inserted, updated
        and the write's sequence."""
        points = [data_pb.Point(period=str(p), value_usd=float(v)) for p, v in dict(values).items()]
        series = data_pb.SeriesPoints(
            key=_key(reporter, partner, flow, kind, product, frequency), points=points, source=source
        )
        request = data_pb.WritePointsRequest(series=[series])
        if release is not None:
            request.release.CopyFrom(data_pb.Release(**release))
        answer = self._call(self.stub.WritePoints, request)
        return {"inserted": answer.inserted, "updated": answer.updated, "sequence": answer.sequence}

    def series(
        self,
        reporter: str,
        partner: str,
        *,
        flow: str = "export",
        kind: str = "goods",
        product: str = "TOTAL",
        frequency: str = "annual",
        start: Optional[str] = None,
        end: Optional[str] = None,
        aggregate_to: Optional[str] = None,
        as_of_release: Optional[str] = None,
        as_of_date: Optional[str] = None,
    ) -> pd.DataFrame:
        """A series' values, every page: columns period, value_usd, source, release,
        input_count (and expected_input_count when aggregated)."""
        request = data_pb.GetSeriesRequest(
            key=_key(reporter, partner, flow, kind, product, frequency),
            start_period=start or "",
            end_period=end or "",
            aggregate_to=_enum(data_pb.Frequency, "FREQUENCY", aggregate_to),
            page_size=10_000,
            as_of_release=as_of_release or "",
            as_of_date=as_of_date or "",
        )
        rows = []
        while True:
            page = self._call(self.stub.GetSeries, request)
            rows += [
                (v.period, v.value_usd, v.source, v.release, v.input_count, v.expected_input_count)
                for v in page.values
            ]
            if not page.next_page_token:
                break
            request.page_token = page.next_page_token
        columns = ["period", "value_usd", "source", "release", "input_count", "expected_input_count"]
        return pd.DataFrame(rows, columns=columns)

    def columns(
        self,
        reporter: str,
        partner: str,
        *,
        flow: str = "export",
        kind: str = "goods",
        product: str = "TOTAL",
        frequency: str = "monthly",
        start: Optional[str] = None,
        end: Optional[str] = None,
        aggregate_to: Optional[str] = None,
        as_of_release: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> pd.DataFrame:
        """A long series streamed as columns (StreamSeriesColumns: packed values, periods as
        delta-encoded ordinals): columns period, value_usd, source, input_count. For long
        monthly series this is many times faster than :meth:`series`."""
        request = data_pb.StreamSeriesColumnsRequest(
            key=_key(reporter, partner, flow, kind, product, frequency),
            start_period=start or "",
            end_period=end or "",
            aggregate_to=_enum(data_pb.Frequency, "FREQUENCY", aggregate_to),
            as_of_release=as_of_release or "",
        )
        periods: List[str] = []
        values: List[float] = []
        sources: List[str] = []
        inputs: List[int] = []
        for message in self._stream(self.stub.StreamSeriesColumns, request, timeout or self.timeout):
            ordinal = 0
            for i, delta in enumerate(message.period_deltas):
                ordinal = delta if i == 0 else ordinal + delta
                periods.append(_period(message.frequency, ordinal))
            values += message.values_usd
            n = len(message.values_usd)
            if message.source_indexes:
                sources += [message.sources[i] for i in message.source_indexes]
            else:
                sources += [message.sources[0] if message.sources else ""] * n
            inputs += list(message.input_counts) if message.input_counts else [1] * n
        return pd.DataFrame(
            {"period": periods, "value_usd": values, "source": sources, "input_count": inputs}
        )

    def balance(
        self,
        reporter: str,
        partner: str,
        *,
        start: Optional[str] = None,
        end: Optional[str] = None,
        product: str = "",
        frequency: Optional[str] = None,
        as_of_release: Optional[str] = None,
        as_of_date: Optional[str] = None,
    ) -> pd.DataFrame:
        """Exports, imports and balance of goods, services and their total per period (NaN
        where an input is missing, never 0), the published balances beside them, and the
        releases each row used."""
        request = data_pb.GetTradeBalanceRequest(
            reporter=reporter,
            partner=partner,
            product=product,
            frequency=_enum(data_pb.Frequency, "FREQUENCY", frequency),
            start_period=start or "",
            end_period=end or "",
            as_of_release=as_of_release or "",
            as_of_date=as_of_date or "",
        )
        answer = self._call(self.stub.GetTradeBalance, request)
        rows = []
        for row in answer.rows:
            out: Dict[str, Any] = {"period": row.period}
            for part in ("goods", "services", "total"):
                figures = getattr(row, part)
                for name in ("exports_usd", "imports_usd", "balance_usd", "reported_balance_usd"):
                    out[f"{part}_{name}"] = getattr(figures, name) if figures.HasField(name) else float("nan")
            out["complete"] = row.complete
            out["releases"] = list(row.releases)
            rows.append(out)
        return pd.DataFrame(rows)

    def query(
        self,
        *,
        reporters: Sequence[str] = (),
        partners: Sequence[str] = (),
        partner_groups: Sequence[str] = (),
        exclude_partners: Sequence[str] = (),
        flows: Sequence[str] = (),
        kinds: Sequence[str] = (),
        products: Sequence[str] = (),
        product_prefix: str = "",
        product_level: int = 0,
        start: Optional[str] = None,
        end: Optional[str] = None,
        group_by: Sequence[str] = (),
        product_group_level: int = 0,
        balance: bool = False,
        order: Optional[str] = None,
        limit: int = 0,
        as_of_release: Optional[str] = None,
        as_of_date: Optional[str] = None,
    ) -> pd.DataFrame:
        """A question across the matrix (``QueryTrade``), streamed: one row per cell with a
        column per ``group_by`` dimension, value (NaN when no input), input_count,
        missing_input_count and missing_inputs."""
        request = data_pb.QueryTradeRequest(
            reporters=list(reporters),
            partners=list(partners),
            partner_groups=list(partner_groups),
            exclude_partners=list(exclude_partners),
            flows=[_enum(data_pb.Flow, "FLOW", f) for f in flows],
            kinds=[_enum(data_pb.TradeKind, "TRADE_KIND", k) for k in kinds],
            products=list(products),
            product_prefix=product_prefix,
            product_level=product_level,
            start_period=start or "",
            end_period=end or "",
            group_by=[_enum(data_pb.Dimension, "DIMENSION", g) for g in group_by],
            product_group_level=product_group_level,
            balance=balance,
            order=_enum(data_pb.QueryOrder, "QUERY_ORDER", order),
            limit=limit,
            as_of_release=as_of_release or "",
            as_of_date=as_of_date or "",
        )
        rows = []
        for message in self._stream(self.stub.QueryTrade, request, self.timeout):
            for cell in message.cells:
                row: Dict[str, Any] = dict(zip(group_by, cell.group))
                row["value"] = cell.value if cell.HasField("value") else float("nan")
                row["input_count"] = cell.input_count
                row["missing_input_count"] = cell.missing_input_count
                row["missing_inputs"] = list(cell.missing_inputs)
                rows.append(row)
        columns = [*group_by, "value", "input_count", "missing_input_count", "missing_inputs"]
        return pd.DataFrame(rows, columns=columns)

    def releases(self) -> pd.DataFrame:
        """Every release of the store, in release order: label, date, source."""
        answer = self._call(self.stub.ListReleases, data_pb.ListReleasesRequest())
        rows = [(r.release.label, r.release.date, r.release.source) for r in answer.releases]
        return pd.DataFrame(rows, columns=["label", "date", "source"])

    def revisions(
        self,
        reporter: str = "",
        partner: str = "",
        *,
        from_release: Optional[str] = None,
        to_release: Optional[str] = None,
        from_date: Optional[str] = None,
        to_date: Optional[str] = None,
        limit: int = 1000,
    ) -> pd.DataFrame:
        """What changed between two releases (or days): one row per point with old_value,
        new_value, change and percent (NaN where a side has no value)."""
        request = data_pb.DiffReleasesRequest(
            filter=data_pb.SeriesFilter(reporter=reporter, partner=partner, measure=data_pb.MEASURE_ANY),
            from_release=from_release or "",
            to_release=to_release or "",
            from_date=from_date or "",
            to_date=to_date or "",
            limit=limit,
        )
        answer = self._call(self.stub.DiffReleases, request)
        nan = float("nan")
        rows = [
            {
                "reporter": r.key.reporter,
                "partner": r.key.partner,
                "flow": data_pb.Flow.Name(r.key.flow),
                "kind": data_pb.TradeKind.Name(r.key.kind),
                "product": r.key.product,
                "period": r.period,
                "old_value": r.old_value if r.HasField("old_value") else nan,
                "new_value": r.new_value if r.HasField("new_value") else nan,
                "change": r.change if r.HasField("change") else nan,
                "percent": r.percent if r.HasField("percent") else nan,
                "release": r.release,
            }
            for r in answer.revisions
        ]
        return pd.DataFrame(rows)

    def watch(
        self,
        *,
        reporter: str = "",
        partner: str = "",
        from_sequence: int = 0,
        as_of_release: Optional[str] = None,
        timeout: Optional[float] = None,
    ) -> Iterator[Dict[str, Any]]:
        """Writes to the series a filter matches, as they become durable (after a replay from
        ``from_sequence``): each a dict with key, points, sequence and release. Ends after
        ``timeout`` seconds (None: when the server ends it) or when the iterator is closed."""
        request = data_pb.WatchSeriesRequest(
            filter=data_pb.SeriesFilter(reporter=reporter, partner=partner),
            from_sequence=from_sequence,
            as_of_release=as_of_release or "",
        )
        try:
            for message in self._stream(self.stub.WatchSeries, request, timeout):
                yield _plain(message)
        except Error as e:
            if timeout is None or e.code != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise


class NegotiationClient(_Client):
    """The negotiation service (``tradepact.negotiation.v1.NegotiationService``)."""

    _stub = negotiation_rpc.NegotiationServiceStub

    def negotiations(self) -> List[Dict[str, Any]]:
        """Every negotiation (all pages), as dicts."""
        request = negotiation_pb.ListNegotiationsRequest(page_size=100)
        out: List[Dict[str, Any]] = []
        while True:
            page = self._call(self.stub.ListNegotiations, request)
            out += [_plain(n) for n in page.negotiations]
            if not page.next_page_token:
                return out
            request.page_token = page.next_page_token

    def negotiation(self, id: str, *, include_positions: bool = False) -> Dict[str, Any]:
        """One negotiation (with the positions the token may see, when asked)."""
        request = negotiation_pb.GetNegotiationRequest(id=id, include_positions=include_positions)
        return _plain(self._call(self.stub.GetNegotiation, request).negotiation)

    def analyze(self, id: str) -> Dict[str, Any]:
        """The exact analysis of a negotiation (ZOPA, frontier, Nash, Kalai–Smorodinsky, …)."""
        request = negotiation_pb.AnalyzeNegotiationRequest(id=id)
        return _plain(self._call(self.stub.AnalyzeNegotiation, request))

    def create(self, negotiation: Mapping[str, Any]) -> Dict[str, Any]:
        """Creates a negotiation from a dict with CreateNegotiationRequest's fields (title,
        agreement, parties, issues with their options, deadline_rounds); returns it."""
        request = json_format.ParseDict(negotiation, negotiation_pb.CreateNegotiationRequest())
        return _plain(self._call(self.stub.CreateNegotiation, request).negotiation)

    def set_position(self, id: str, party: str, position: Mapping[str, Any]) -> None:
        """Sets `party`'s private position: a dict with ``weights`` (issue → weight),
        ``values`` (issue → option → value in [0, 1]) and ``reservation_value``."""
        values = {issue: {"values": dict(v)} for issue, v in position.get("values", {}).items()}
        request = negotiation_pb.SetPositionRequest(
            negotiation_id=id,
            party=party,
            position=json_format.ParseDict(
                {**position, "values": values}, negotiation_pb.Position()
            ),
        )
        self._call(self.stub.SetPosition, request)

    def offer(self, id: str, party: str, package: Mapping[str, str]) -> Dict[str, Any]:
        """`party` offers `package` (issue → option); returns the offer as recorded."""
        request = negotiation_pb.SubmitOfferRequest(negotiation_id=id, party=party, package=_package(package))
        return _plain(self._call(self.stub.SubmitOffer, request).offer)

    def respond(self, id: str, party: str, offer_id: int, *, accept: bool) -> Dict[str, Any]:
        """`party` accepts or rejects an offer; returns the negotiation's status and, once
        agreed, the agreed offer's id."""
        request = negotiation_pb.RespondToOfferRequest(
            negotiation_id=id, party=party, offer_id=offer_id, accept=accept
        )
        return _plain(self._call(self.stub.RespondToOffer, request))

    def simulate(
        self,
        id: str,
        strategies: Sequence[Union[str, float]],
        *,
        rounds: int = 0,
        seed: int = 0,
        record: bool = False,
    ) -> Tuple[pd.DataFrame, Dict[str, Any]]:
        """A simulation between strategies, one per party (``"boulware"``, ``"linear"``,
        ``"conceder"``, an exponent, ``"tit-for-tat"``, ``"zeuthen"``): the turns as a
        DataFrame (turn, round, party, offer, accepted, utilities, concession, agreed) and the
        outcome as a dict
        (agreement, agreed, utilities, turns, reason, branch_id)."""
        request = negotiation_pb.SimulateNegotiationRequest(
            id=id,
            strategies=[_strategy(s) for s in strategies],
            deadline_rounds=rounds,
            seed=seed,
            record_as_branch=record,
        )
        steps: List[Dict[str, Any]] = []
        outcome: Dict[str, Any] = {}
        for message in self._stream(self.stub.SimulateNegotiation, request, self.timeout):
            if message.HasField("step"):
                steps.append(_plain(message.step))
            else:
                outcome = _plain(message.outcome)
        columns = ["turn", "round", "party", "offer", "accepted", "utilities", "concession", "agreed"]
        return pd.DataFrame(steps, columns=columns), outcome

    def take_seat(
        self,
        id: str,
        party: str,
        agent: Any,
        *,
        others: Optional[Mapping[str, Union[str, float]]] = None,
        rounds: int = 0,
        turn_seconds: int = 60,
        on_timeout: str = "reject",
        seed: int = 0,
    ) -> Dict[str, Any]:
        """Plays ``party``'s seat live against the service's time-based strategies (``others``:
        each other party's ``"boulware"``, ``"linear"``, ``"conceder"`` or exponent; Boulware by
        default), which know only their own positions. ``agent(turn)`` is called on each of the
        seat's turns with a dict (``turn``, ``round``, ``standing_offer`` as issue → option or
        None, ``accepted_by``, ``seat_utility`` when the seat has a position,
        ``deadline_unix_millis``, ``refused`` when its previous move was) and returns its move:
        ``{"offer": {issue: option}}``, ``{"accept": True}``, ``{"reject": True}`` or
        ``{"break_off": "why"}``. A turn not answered within ``turn_seconds`` is a rejection
        (``on_timeout="reject"``) or a break-off (``"break_off"``). Returns
        ``{"turns": [...every turn played...], "ending": {...}}``."""
        import queue

        timeouts = {"reject": negotiation_pb.SEAT_TIMEOUT_REJECT, "break_off": negotiation_pb.SEAT_TIMEOUT_BREAK_OFF}
        if on_timeout not in timeouts:
            raise ValueError(f"on_timeout is 'reject' or 'break_off', not {on_timeout!r}")
        exponents = {p: (_STRATEGIES[s] if isinstance(s, str) else float(s)) for p, s in (others or {}).items()}
        join = negotiation_pb.JoinSeat(
            id=id, party=party, exponents=exponents, deadline_rounds=rounds,
            turn_seconds=turn_seconds, on_timeout=timeouts[on_timeout], seed=seed,
        )
        moves: "queue.Queue[Optional[Message]]" = queue.Queue()
        moves.put(negotiation_pb.TakeSeatRequest(join=join))

        def requests() -> Iterator[Message]:
            while (move := moves.get()) is not None:
                yield move

        turns: List[Dict[str, Any]] = []
        ending: Dict[str, Any] = {}
        try:
            for message in self.stub.TakeSeat(requests(), metadata=self._metadata):
                kind = message.WhichOneof("message")
                if kind == "turn":
                    turns.append(_plain(message.turn))
                elif kind == "your_turn":
                    asked = _plain(message.your_turn)
                    asked["deadline_unix_millis"] = message.your_turn.deadline_unix_millis
                    standing = message.your_turn.standing_offer
                    asked["standing_offer"] = (
                        {c.issue_id: c.option_id for c in standing.choices}
                        if message.your_turn.HasField("standing_offer") else None
                    )
                    move = agent(asked)
                    request = negotiation_pb.SeatMove(turn=message.your_turn.turn)
                    if "offer" in move:
                        request.offer.CopyFrom(_package(move["offer"]))
                    elif move.get("accept"):
                        request.accept = True
                    elif move.get("reject"):
                        request.reject = True
                    else:
                        request.break_off = str(move.get("break_off", "the agent stopped"))
                    moves.put(negotiation_pb.TakeSeatRequest(move=request))
                elif kind == "ended":
                    ending = _plain(message.ended)
        except grpc.RpcError as e:
            raise _error(e) from None
        finally:
            moves.put(None)
        return {"turns": turns, "ending": ending}

    def impact(
        self, id: str, package: Optional[Mapping[str, str]] = None, *, skip_missing_baselines: bool = False
    ) -> Dict[str, Any]:
        """The trade impact of a package (issue → option; None: the agreed one), from the
        data service's baselines."""
        request = negotiation_pb.EstimateImpactRequest(
            id=id,
            package=_package(package) if package else None,
            skip_missing_baselines=skip_missing_baselines,
        )
        return _plain(self._call(self.stub.EstimateImpact, request))

    def robustness(
        self,
        id: str,
        *,
        weight_spread: float = 0.0,
        reservation_spread: float = 0.0,
        uncertain: Sequence[Mapping[str, Any]] = (),
        samples: int = 1000,
        seed: int = 0,
        compare: Optional[Mapping[str, str]] = None,
    ) -> Dict[str, Any]:
        """How robust the solutions are to the positions (AnalyzeRobustness): every weight
        ±``weight_spread`` of itself, every reservation ±``reservation_spread``, and
        ``uncertain`` parameters as dicts (party, kind WEIGHT/VALUE/RESERVATION, issue_id,
        option_id, low, high); ``compare`` a package (issue → option) to match samples with."""
        request = negotiation_pb.AnalyzeRobustnessRequest(
            id=id,
            weight_spread=weight_spread,
            reservation_spread=reservation_spread,
            uncertain=[
                json_format.ParseDict(
                    {**u, "kind": f"PARAMETER_KIND_{str(u['kind']).upper()}"},
                    negotiation_pb.UncertainParameter(),
                )
                for u in uncertain
            ],
            samples=samples,
            seed=seed,
            compare=_package(compare) if compare else None,
        )
        return _plain(self._call(self.stub.AnalyzeRobustness, request))

    def mediate(self, id: str, voters: Sequence[str], *, rounds: int = 2000, seed: int = 0) -> Dict[str, Any]:
        """A mediated negotiation (SimulateMediation): one voter per party, ``"hill"`` or
        ``"anneal:T"``; where the mediator's text ends, beside the Nash package."""
        request = negotiation_pb.SimulateMediationRequest(
            id=id, voters=[_voter(v) for v in voters], rounds=rounds, seed=seed
        )
        return _plain(self._call(self.stub.SimulateMediation, request))

    def import_genius(self, folder: PathLike, *, rounds: int = 100) -> Dict[str, Any]:
        """Creates a negotiation from a GENIUS scenario folder (ImportScenario): its domain file
        and one utility-space file per party, named after the party; returns the negotiation
        and the import's notes."""
        files = sorted(pathlib.Path(folder).glob("*.xml"))
        domain = next(f for f in files if "<negotiation_template" in f.read_text())
        return self._import(negotiation_pb.SCENARIO_FORMAT_GENIUS, domain, [f for f in files if f != domain], rounds)

    def import_negmas(self, folder: PathLike, *, rounds: int = 100) -> Dict[str, Any]:
        """Creates a negotiation from a NegMAS scenario folder (ImportScenario): its outcome-space
        file and one utility-function file per party (YAML), named after the party; returns the
        negotiation and the import's notes (each rescaling to tradepact's [0, 1] among them)."""
        files = sorted(f for f in pathlib.Path(folder).iterdir() if f.suffix in (".yml", ".yaml") and not f.name.startswith("."))
        kind = lambda f: next((line.split(":", 1)[1].strip().strip("'\"") for line in f.read_text().splitlines() if line.startswith("type:")), "")  # noqa: E731
        domain = next(f for f in files if "OutcomeSpace" in kind(f))
        profiles = [f for f in files if f != domain and "fun" in kind(f).lower()]
        return self._import(negotiation_pb.SCENARIO_FORMAT_NEGMAS, domain, profiles, rounds)

    def _import(self, format: int, domain: pathlib.Path, profiles: Sequence[pathlib.Path], rounds: int) -> Dict[str, Any]:
        file = lambda f: negotiation_pb.ScenarioFile(name=f.name, content=f.read_text())  # noqa: E731
        request = negotiation_pb.ImportScenarioRequest(
            format=format, domain=file(domain), profiles=[file(f) for f in profiles], deadline_rounds=rounds
        )
        return _plain(self._call(self.stub.ImportScenario, request))

    def export_scenario(self, id: str, folder: PathLike, *, format: str = "genius") -> List[str]:
        """Writes negotiation ``id`` into ``folder`` as scenario files (ExportScenario),
        ``format`` ``"genius"`` or ``"negmas"``: the domain file and one file per position the
        token may see. Returns the parties left out (positions hidden or not set)."""
        formats = {"genius": negotiation_pb.SCENARIO_FORMAT_GENIUS, "negmas": negotiation_pb.SCENARIO_FORMAT_NEGMAS}
        if format not in formats:
            raise ValueError(f"unknown format {format!r}: genius or negmas")
        request = negotiation_pb.ExportScenarioRequest(id=id, format=formats[format])
        answer = self._call(self.stub.ExportScenario, request)
        folder = pathlib.Path(folder)
        files = [answer.domain, *answer.profiles]
        for f in files:
            if pathlib.PurePath(f.name).name != f.name or f.name.startswith("."):
                raise ValueError(f"cannot write {f.name!r}: a party's name must make a plain file name")
        folder.mkdir(parents=True, exist_ok=True)
        for f in files:
            (folder / f.name).write_text(f.content)
        return list(answer.left_out)


def _voter(voter: str) -> Message:
    if voter == "hill":
        return negotiation_pb.Voter(hill_climber=True)
    if voter.startswith("anneal:"):
        return negotiation_pb.Voter(annealer_temperature=float(voter.split(":", 1)[1]))
    raise ValueError(f"unknown voter {voter!r}: hill or anneal:T")


def _package(package: Mapping[str, str]) -> Message:
    return negotiation_pb.Package(
        choices=[negotiation_pb.Choice(issue_id=i, option_id=o) for i, o in package.items()]
    )


_STRATEGIES = {"boulware": 0.2, "linear": 1.0, "conceder": 5.0}


def _strategy(strategy: Union[str, float]) -> Message:
    if isinstance(strategy, (int, float)):
        return negotiation_pb.Strategy(time_based_exponent=float(strategy))
    if strategy in _STRATEGIES:
        return negotiation_pb.Strategy(time_based_exponent=_STRATEGIES[strategy])
    if strategy == "tit-for-tat":
        return negotiation_pb.Strategy(tit_for_tat=True)
    if strategy == "zeuthen":
        return negotiation_pb.Strategy(zeuthen=True)
    raise ValueError(f"unknown strategy {strategy!r}: boulware, linear, conceder, an exponent, tit-for-tat or zeuthen")


def connect_data(target: str, **kwargs: Any) -> DataClient:
    """A client of the data service at ``target`` (``HOST:PORT``, ``http://…`` or
    ``https://…``); ``token=``, ``ca=``, ``cert=`` and ``key=`` (mutual TLS) and ``timeout=``
    as :class:`DataClient` takes them."""
    return DataClient(target, **kwargs)


def connect_negotiation(target: str, **kwargs: Any) -> NegotiationClient:
    """A client of the negotiation service, as :func:`connect_data`."""
    return NegotiationClient(target, **kwargs)
