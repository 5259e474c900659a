//! `tradepact.data.v1.TradeDataService`: each handler validates its request
//! ([`convert`]), calls the application ([`crate::app`]) and converts the answer; failures
//! become statuses in one place (`tradepact_rpc::status::of`).

use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};
use tradepact_model::Outcome;
use tradepact_proto::data_v1 as pb;
use tradepact_proto::data_v1::trade_data_service_server::TradeDataService;
use tradepact_rpc::outbox::OutStream;
use tradepact_rpc::paging::{self, Fingerprint};
use tradepact_rpc::status::of;
use tradepact_store::aggregate::ReadPlan;
use tradepact_store::analysis;
use tradepact_store::{AsOf, Period, SeriesKey, Violations};

use crate::app::ingest::Ingested;
use crate::app::{validated, Items, Trade};
use crate::convert;
use crate::feed::{message, SeriesFeed};
use crate::query;
use crate::reference;

/// Values per `StreamSeries` message.
pub const STREAM_CHUNK: usize = 4096;
/// Values per `StreamSeriesColumns` message (about 80 kB of doubles and deltas).
pub const COLUMNS_CHUNK: usize = 8192;
/// Default and largest `GetSeries` page.
pub const SERIES_PAGE: (usize, usize) = (1000, 10_000);
/// Default and largest `ListSeries` page.
pub const LIST_PAGE: (usize, usize) = (100, 1000);
/// Default and largest number of revisions `DiffReleases` returns.
pub const DIFF_LIMIT: (usize, usize) = (1000, 10_000);
/// Default and largest `ListProducts` page.
pub const PRODUCTS_PAGE: (usize, usize) = (50, 1000);

/// The data service: the handlers over the application.
#[derive(Clone)]
pub struct DataService {
    app: Trade,
}

impl DataService {
    /// The handlers of `app`.
    pub fn new(app: Trade) -> DataService {
        DataService { app }
    }
}

/// Sends what a blocking iterator yields as a server stream, from the blocking pool; stops
/// after the first error or when the client goes away.
fn forward<T: Send + 'static>(items: Items<T>) -> OutStream<T> {
    let (tx, rx) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        for item in items {
            let last = item.is_err();
            if tx.blocking_send(item.map_err(of)).is_err() || last {
                return;
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// A validated series key, its read plan and period range, with the page size and the
/// `GetSeries` page token when `page` is given (their violations collected with the rest).
struct Range {
    key: SeriesKey,
    plan: ReadPlan,
    periods: (u32, u32),
    /// The figures asked for (resolved into `plan` by [`DataService::resolve`]).
    as_of: AsOf,
}

fn read_range(
    key: Option<&pb::SeriesKey>,
    (start, end): (&str, &str),
    aggregate_to: i32,
    (release, date): (&str, &str),
    v: &mut Violations,
) -> Option<Range> {
    let key = convert::series_key(key, "key", v);
    let plan = key
        .as_ref()
        .and_then(|k| convert::read_plan(k, aggregate_to, v));
    let as_of = convert::as_of(release, date, "as_of_", v);
    let periods = convert::period_range(start, end, plan?.frequency, v);
    Some(Range {
        key: key?,
        plan: plan?,
        periods,
        as_of,
    })
}

impl DataService {
    /// A validated range with the figures it asked for resolved (`NOT_FOUND` for an unknown
    /// release).
    fn range_of(
        &self,
        key: Option<&pb::SeriesKey>,
        periods: (&str, &str),
        aggregate_to: i32,
        as_of: (&str, &str),
    ) -> Outcome<Range> {
        let mut v = Violations::default();
        let range = read_range(key, periods, aggregate_to, as_of, &mut v);
        self.resolve(validated(v, || range)?)
    }

    fn resolve(&self, mut range: Range) -> Outcome<Range> {
        range.plan = range.plan.at(self.app.view(&range.as_of)?);
        Ok(range)
    }
}

/// The status of a stream ingest that stopped at a batch: its code and details, with the
/// batch named and what was kept said.
fn stopped_at(e: Status, batches: u64) -> Status {
    Status::with_details(
        e.code(),
        format!(
            "batch {}: {} (the {batches} batches before it were applied and are durable)",
            batches + 1,
            e.message()
        ),
        e.details().to_vec().into(),
    )
}

/// A message of a streaming write: its release, and its rows as a batch.
trait WriteMessage: Send + 'static {
    /// The release it names, if any.
    fn release(&self) -> Option<&pb::Release>;
    /// Its rows, written as `release` (violations into `v`).
    fn batch(&self, release: Option<&pb::Release>, v: &mut Violations) -> crate::app::Batch;
}

impl WriteMessage for pb::StreamWritePointsRequest {
    fn release(&self) -> Option<&pb::Release> {
        self.release.as_ref()
    }

    fn batch(&self, release: Option<&pb::Release>, v: &mut Violations) -> crate::app::Batch {
        convert::write(&self.series, release, v)
    }
}

impl WriteMessage for pb::StreamWriteColumnsRequest {
    fn release(&self) -> Option<&pb::Release> {
        self.release.as_ref()
    }

    fn batch(&self, release: Option<&pb::Release>, v: &mut Violations) -> crate::app::Batch {
        crate::columns::write(self, release, v)
    }
}

impl DataService {
    /// A streaming write (`StreamWritePoints`, `StreamWriteColumns`): each message a batch
    /// through the ingest writer, one release per call, the summary once all are durable.
    async fn ingest_stream<M: WriteMessage>(
        &self,
        mut stream: Streaming<M>,
    ) -> Result<Ingested, Status> {
        let ingest = self.app.ingest();
        // The call's release: the first message's; later ones repeat it or leave it unset.
        let mut release: Option<Option<pb::Release>> = None;
        let read_failure = loop {
            let msg = match stream.message().await {
                Ok(Some(msg)) => msg,
                Ok(None) => break None,
                Err(e) => break Some(tradepact_rpc::status::request_decode(e)),
            };
            let mut v = Violations::default();
            let named = msg.release().cloned();
            let effective = match &release {
                None => {
                    release = Some(named.clone());
                    named
                }
                Some(first) if named.is_none() => first.clone(),
                Some(first) if *first != named => {
                    v.add(
                        "release",
                        "a streaming write writes one release: set it on the first message, then repeat it or leave it unset",
                    );
                    named
                }
                Some(_) => named,
            };
            let batch = msg.batch(effective.as_ref(), &mut v);
            let batch = match validated(v, || Some(batch)) {
                Ok(batch) => batch,
                Err(e) => break Some(of(e)),
            };
            if !ingest.push(batch).await {
                break None; // the writer stopped on a failure, reported below
            }
        };
        let mut ingested = ingest.finish().await.map_err(of)?;
        // The writer's failure comes first: it is about an earlier batch.
        if let Some(e) = ingested.failure.take().map(of).or(read_failure) {
            return Err(stopped_at(e, ingested.batches));
        }
        Ok(ingested)
    }
}

#[tonic::async_trait]
impl TradeDataService for DataService {
    async fn write_points(
        &self,
        request: Request<pb::WritePointsRequest>,
    ) -> Result<Response<pb::WritePointsResponse>, Status> {
        let req = request.get_ref();
        let mut v = Violations::default();
        let batch = convert::write(&req.series, req.release.as_ref(), &mut v);
        let batch = validated(v, || Some(batch)).map_err(of)?;
        let s = self.app.write(batch, true).await.map_err(of)?;
        Ok(Response::new(pb::WritePointsResponse {
            inserted: s.inserted,
            updated: s.updated,
            sequence: s.sequence,
        }))
    }

    async fn stream_write_points(
        &self,
        request: Request<Streaming<pb::StreamWritePointsRequest>>,
    ) -> Result<Response<pb::StreamWritePointsResponse>, Status> {
        let summary = self.ingest_stream(request.into_inner()).await?;
        Ok(Response::new(pb::StreamWritePointsResponse {
            batches: summary.batches,
            inserted: summary.total.inserted,
            updated: summary.total.updated,
            last_sequence: summary.total.sequence,
        }))
    }

    async fn stream_write_columns(
        &self,
        request: Request<Streaming<pb::StreamWriteColumnsRequest>>,
    ) -> Result<Response<pb::StreamWriteColumnsResponse>, Status> {
        let summary = self.ingest_stream(request.into_inner()).await?;
        Ok(Response::new(pb::StreamWriteColumnsResponse {
            batches: summary.batches,
            inserted: summary.total.inserted,
            updated: summary.total.updated,
            last_sequence: summary.total.sequence,
        }))
    }

    async fn get_series(
        &self,
        request: Request<pb::GetSeriesRequest>,
    ) -> Result<Response<pb::GetSeriesResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let range = read_range(
            req.key.as_ref(),
            (&req.start_period, &req.end_period),
            req.aggregate_to,
            (&req.as_of_release, &req.as_of_date),
            &mut v,
        );
        let size = v.check("page_size", paging::size(req.page_size, SERIES_PAGE));
        let fingerprint = Fingerprint::of(&[
            &range.as_ref().map(|r| r.key.encode()).unwrap_or_default(),
            req.start_period.as_bytes(),
            req.end_period.as_bytes(),
            &req.aggregate_to.to_be_bytes(),
            req.as_of_release.as_bytes(),
            req.as_of_date.as_bytes(),
        ]);
        let start = v.check(
            "page_token",
            paging::decode_number(&req.page_token, fingerprint),
        );
        let (range, size) = validated(v, || range.zip(size)).map_err(of)?;
        let mut range = self.resolve(range).map_err(of)?;
        if let Some(Some(start)) = start {
            range.periods.0 = range.periods.0.max(start as u32);
        }
        let page = self
            .app
            .values_page(&range.key, range.plan, range.periods, size);
        let (values, next) = page.map_err(of)?;
        Ok(Response::new(pb::GetSeriesResponse {
            key: Some(pb::SeriesKey::from(&range.key)),
            values: values.into_iter().map(convert::series_value).collect(),
            next_page_token: next
                .map(|n| paging::encode_number(fingerprint, n.into()))
                .unwrap_or_default(),
        }))
    }

    type StreamSeriesStream = OutStream<pb::StreamSeriesResponse>;

    async fn stream_series(
        &self,
        request: Request<pb::StreamSeriesRequest>,
    ) -> Result<Response<Self::StreamSeriesStream>, Status> {
        let req = request.into_inner();
        let periods = (req.start_period.as_str(), req.end_period.as_str());
        let as_of = (req.as_of_release.as_str(), req.as_of_date.as_str());
        let r = self.range_of(req.key.as_ref(), periods, req.aggregate_to, as_of);
        let r = r.map_err(of)?;
        let mut values = self
            .app
            .values(r.key, r.plan, r.periods)
            .await
            .map_err(of)?;
        let messages = std::iter::from_fn(move || {
            let mut chunk = Vec::with_capacity(STREAM_CHUNK);
            for value in values.by_ref() {
                match value {
                    Ok(value) => chunk.push(convert::series_value(value)),
                    Err(e) => return Some(Err(e)),
                }
                if chunk.len() == STREAM_CHUNK {
                    break;
                }
            }
            (!chunk.is_empty()).then_some(Ok(pb::StreamSeriesResponse { values: chunk }))
        });
        Ok(Response::new(forward(Box::new(messages))))
    }

    type StreamSeriesColumnsStream = OutStream<pb::StreamSeriesColumnsResponse>;

    async fn stream_series_columns(
        &self,
        request: Request<pb::StreamSeriesColumnsRequest>,
    ) -> Result<Response<Self::StreamSeriesColumnsStream>, Status> {
        let req = request.into_inner();
        let periods = (req.start_period.as_str(), req.end_period.as_str());
        let as_of = (req.as_of_release.as_str(), req.as_of_date.as_str());
        let r = self.range_of(req.key.as_ref(), periods, req.aggregate_to, as_of);
        let r = r.map_err(of)?;
        let blocks = self.app.columns(r.key, r.plan, r.periods, COLUMNS_CHUNK);
        let blocks = blocks.await.map_err(of)?;
        let messages = blocks.map(|block| block.map(convert::columns));
        Ok(Response::new(forward(Box::new(messages))))
    }

    async fn list_series(
        &self,
        request: Request<pb::ListSeriesRequest>,
    ) -> Result<Response<pb::ListSeriesResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let filter = convert::filter(req.filter.as_ref(), &mut v);
        let size = v.check("page_size", paging::size(req.page_size, LIST_PAGE));
        let fingerprint = Fingerprint::of(&[format!("{filter:?}").as_bytes()]);
        let after = match req.page_token.as_str() {
            "" => None,
            token => v.check("page_token", paging::decode(token, fingerprint)),
        };
        let size = validated(v, || size).map_err(of)?;
        let listed = self.app.list(&filter, after.as_deref(), size);
        let (infos, next) = listed.map_err(of)?;
        Ok(Response::new(pb::ListSeriesResponse {
            series: infos.into_iter().map(convert::series_info).collect(),
            next_page_token: next
                .map(|n| paging::encode(fingerprint, &n))
                .unwrap_or_default(),
        }))
    }

    async fn delete_series(
        &self,
        request: Request<pb::DeleteSeriesRequest>,
    ) -> Result<Response<pb::DeleteSeriesResponse>, Status> {
        let mut v = Violations::default();
        let key = convert::series_key(request.get_ref().key.as_ref(), "key", &mut v);
        let key = validated(v, || key).map_err(of)?;
        let deleted_points = self.app.delete(key).await.map_err(of)?;
        Ok(Response::new(pb::DeleteSeriesResponse { deleted_points }))
    }

    async fn get_trade_balance(
        &self,
        request: Request<pb::GetTradeBalanceRequest>,
    ) -> Result<Response<pb::GetTradeBalanceResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let (reporter, partner, product) = (&req.reporter, &req.partner, &req.product);
        let query = convert::balance_query(reporter, partner, product, req.frequency, "", &mut v);
        let as_of = convert::as_of(&req.as_of_release, &req.as_of_date, "as_of_", &mut v);
        let periods = (query.as_ref()).map(|q| {
            convert::period_range(&req.start_period, &req.end_period, q.frequency, &mut v)
        });
        let (mut query, periods) = validated(v, || query.zip(periods)).map_err(of)?;
        query.view = self.app.view(&as_of).map_err(of)?;
        let rows = self.app.balance(&query, periods).map_err(of)?;
        Ok(Response::new(pb::GetTradeBalanceResponse {
            rows: (rows.into_iter())
                .map(|row| convert::balance_row(row, |id| self.app.release_label(id)))
                .collect(),
        }))
    }

    async fn get_change(
        &self,
        request: Request<pb::GetChangeRequest>,
    ) -> Result<Response<pb::GetChangeResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let target = convert::change_target(req.target.as_ref(), &mut v);
        let as_of = convert::as_of(&req.as_of_release, &req.as_of_date, "as_of_", &mut v);
        let periods = target.as_ref().map(|t| {
            let f = t.frequency();
            (
                v.check("from_period", Period::parse(&req.from_period, f)),
                v.check("to_period", Period::parse(&req.to_period, f)),
            )
        });
        let (target, (from, to)) = validated(v, || {
            let (from, to) = periods?;
            Some((target?, (from?, to?)))
        })
        .map_err(of)?;
        let view = self.app.view(&as_of).map_err(of)?;
        let change = self.app.change(&target, from, to, view).map_err(of)?;
        Ok(Response::new(convert::change(change)))
    }

    type WatchSeriesStream = OutStream<pb::WatchSeriesResponse>;

    async fn watch_series(
        &self,
        request: Request<pb::WatchSeriesRequest>,
    ) -> Result<Response<Self::WatchSeriesStream>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let filter = convert::filter(req.filter.as_ref(), &mut v);
        let as_of = convert::as_of(&req.as_of_release, &req.as_of_date, "as_of_", &mut v);
        validated(v, || Some(())).map_err(of)?;
        let view = self.app.view(&as_of).map_err(of)?;
        let watch = self
            .app
            .watch(filter.clone(), req.from_sequence, view)
            .await;
        let watch = watch.map_err(of)?;
        let past = (watch.past.iter())
            .map(|(seq, key, points, release)| message(*seq, key, points, release.as_deref()))
            .collect();
        let feed = SeriesFeed::new(filter, watch.replayed_until);
        Ok(Response::new(tradepact_rpc::watch::watch(
            past, watch.live, feed,
        )))
    }

    async fn list_countries(
        &self,
        request: Request<pb::ListCountriesRequest>,
    ) -> Result<Response<pb::ListCountriesResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let kind = v.check("kind", reference::kind_in(req.kind));
        let kind = validated(v, || kind).map_err(of)?;
        let found = self.app.countries(&req.search, kind);
        Ok(Response::new(pb::ListCountriesResponse {
            countries: found.into_iter().map(reference::country_out).collect(),
        }))
    }

    async fn list_groups(
        &self,
        request: Request<pb::ListGroupsRequest>,
    ) -> Result<Response<pb::ListGroupsResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let as_of = reference::as_of(req.as_of_year, &mut v);
        validated(v, || Some(())).map_err(of)?;
        let groups = self.app.groups(&req.name, as_of).await.map_err(of)?;
        Ok(Response::new(pb::ListGroupsResponse {
            groups: groups.into_iter().map(reference::group_out).collect(),
        }))
    }

    async fn define_group(
        &self,
        request: Request<pb::DefineGroupRequest>,
    ) -> Result<Response<pb::DefineGroupResponse>, Status> {
        let mut v = Violations::default();
        let group = reference::group_in(request.get_ref().group.as_ref(), &mut v);
        let group = validated(v, || group).map_err(of)?;
        let stored = self.app.define_group(group).await.map_err(of)?;
        Ok(Response::new(pb::DefineGroupResponse {
            group: Some(reference::group_out(stored)),
        }))
    }

    async fn list_products(
        &self,
        request: Request<pb::ListProductsRequest>,
    ) -> Result<Response<pb::ListProductsResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let size = v.check("page_size", paging::size(req.page_size, PRODUCTS_PAGE));
        let fingerprint = Fingerprint::of(&[req.search.as_bytes(), req.parent.as_bytes()]);
        let offset = v.check(
            "page_token",
            paging::decode_number(&req.page_token, fingerprint),
        );
        let (size, offset) = validated(v, || size.zip(offset)).map_err(of)?;
        let offset = offset.unwrap_or(0) as usize;
        let found = self.app.products(&req.search, &req.parent, offset, size);
        let (products, next) = found.map_err(of)?;
        Ok(Response::new(pb::ListProductsResponse {
            products: products.into_iter().map(reference::product_out).collect(),
            next_page_token: next
                .map(|n| paging::encode_number(fingerprint, n as u64))
                .unwrap_or_default(),
        }))
    }

    type QueryTradeStream = OutStream<pb::QueryTradeResponse>;

    async fn query_trade(
        &self,
        request: Request<pb::QueryTradeRequest>,
    ) -> Result<Response<Self::QueryTradeStream>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let question = query::query_in(&req, &mut v);
        let as_of = convert::as_of(&req.as_of_release, &req.as_of_date, "as_of_", &mut v);
        let (mut q, year) = validated(v, || question).map_err(of)?;
        q.plan = q.plan.at(self.app.view(&as_of).map_err(of)?);
        let year = crate::app::query::membership_year(year);
        let members = self
            .app
            .members(&req.partner_groups, year)
            .await
            .map_err(of)?;
        // Groups with no member that year select no partner (not "any partner").
        let nobody = !req.partner_groups.is_empty() && members.is_empty() && q.partners.is_empty();
        q.partners.extend(members);
        let cells = match nobody {
            true => Vec::new(),
            false => self.app.query(q).await.map_err(of)?,
        };
        let mut cells = cells.into_iter().map(query::cell_out);
        let messages = std::iter::from_fn(move || {
            let chunk: Vec<pb::QueryCell> = cells.by_ref().take(query::CELLS_PER_MESSAGE).collect();
            (!chunk.is_empty()).then_some(Ok(pb::QueryTradeResponse { cells: chunk }))
        });
        Ok(Response::new(forward(Box::new(messages))))
    }

    async fn get_mirror(
        &self,
        request: Request<pb::GetMirrorRequest>,
    ) -> Result<Response<pb::GetMirrorResponse>, Status> {
        let req = request.into_inner();
        let periods = (req.start_period.as_str(), req.end_period.as_str());
        let mut v = Violations::default();
        let key = convert::series_key(req.key.as_ref(), "key", &mut v);
        let as_of = convert::as_of(&req.as_of_release, &req.as_of_date, "as_of_", &mut v);
        let range = key.map(|k| {
            let periods = convert::period_range(periods.0, periods.1, k.frequency, &mut v);
            (k, periods)
        });
        let (key, periods) = validated(v, || range).map_err(of)?;
        let view = self.app.view(&as_of).map_err(of)?;
        let (mirror_key, rows) = self.app.mirror(&key, periods, view).map_err(of)?;
        Ok(Response::new(pb::GetMirrorResponse {
            mirror_key: Some(pb::SeriesKey::from(&mirror_key)),
            reported_basis: analysis::basis(key.flow).to_owned(),
            mirror_basis: analysis::basis(mirror_key.flow).to_owned(),
            rows: rows.into_iter().map(convert::mirror_row).collect(),
        }))
    }

    async fn list_releases(
        &self,
        request: Request<pb::ListReleasesRequest>,
    ) -> Result<Response<pb::ListReleasesResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let filter = (req.filter.as_ref()).map(|f| convert::filter(Some(f), &mut v));
        validated(v, || Some(())).map_err(of)?;
        let releases = self.app.releases(filter).await.map_err(of)?;
        Ok(Response::new(pb::ListReleasesResponse {
            releases: (releases.iter())
                .map(|(info, values)| pb::ReleaseInfo {
                    release: Some(convert::release_out(&info.release)),
                    values: *values,
                })
                .collect(),
        }))
    }

    async fn diff_releases(
        &self,
        request: Request<pb::DiffReleasesRequest>,
    ) -> Result<Response<pb::DiffReleasesResponse>, Status> {
        let req = request.into_inner();
        let mut v = Violations::default();
        let filter = convert::filter(req.filter.as_ref(), &mut v);
        let from = convert::as_of(&req.from_release, &req.from_date, "from_", &mut v);
        let to = convert::as_of(&req.to_release, &req.to_date, "to_", &mut v);
        let limit = v.check("limit", paging::size(req.limit as i32, DIFF_LIMIT));
        let limit = validated(v, || limit).map_err(of)?;
        let (revisions, truncated) =
            (self.app.revisions(filter, (from, to), limit).await).map_err(of)?;
        Ok(Response::new(pb::DiffReleasesResponse {
            revisions: (revisions.into_iter())
                .map(|r| {
                    let release = self.app.release_label(r.release);
                    convert::revision(r, release)
                })
                .collect(),
            truncated,
        }))
    }
}
