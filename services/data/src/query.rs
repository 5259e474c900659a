//! `QueryTrade` requests in (field violations collected) and cells out.

use tradepact_model::{Country, Product, SeriesFilter, Violations};
use tradepact_proto::data_v1 as pb;
use tradepact_store::aggregate::ReadPlan;
use tradepact_store::model::Frequency;
use tradepact_store::query::{Cell, Dimension, Order, Products, Query, MAX_PERIODS};

use crate::convert;

/// Cells per `QueryTrade` message.
pub const CELLS_PER_MESSAGE: usize = 1000;

fn countries(list: &[String], field: &str, v: &mut Violations) -> Vec<Country> {
    list.iter()
        .enumerate()
        .filter_map(|(i, c)| v.check(format!("{field}[{i}]"), Country::parse(c)))
        .collect()
}

fn products(req: &pb::QueryTradeRequest, v: &mut Violations) -> Products {
    let ways = usize::from(!req.products.is_empty())
        + usize::from(!req.product_prefix.is_empty())
        + usize::from(req.product_level != 0);
    if ways > 1 {
        v.add(
            "products",
            "give product codes, a product_prefix or a product_level, not several",
        );
    }
    if !req.products.is_empty() {
        let codes = (req.products.iter().enumerate())
            .filter_map(|(i, p)| v.check(format!("products[{i}]"), Product::parse(p)))
            .collect();
        return Products::Codes(codes);
    }
    if !req.product_prefix.is_empty() {
        let prefix = SeriesFilter::parse_product(&format!("{}*", req.product_prefix));
        return match v.check("product_prefix", prefix) {
            Some((prefix, _)) => Products::Prefix(prefix),
            None => Products::Total,
        };
    }
    match req.product_level {
        0 => Products::Total,
        l @ (2 | 4 | 6) => Products::Level(l as u8),
        l => {
            v.add("product_level", format!("2, 4 or 6 digits, got {l}"));
            Products::Total
        }
    }
}

fn dimension(d: i32, level: u8) -> Result<Dimension, String> {
    Ok(match pb::Dimension::try_from(d) {
        Ok(pb::Dimension::Reporter) => Dimension::Reporter,
        Ok(pb::Dimension::Partner) => Dimension::Partner,
        Ok(pb::Dimension::Product) => Dimension::Product(level),
        Ok(pb::Dimension::Flow) => Dimension::Flow,
        Ok(pb::Dimension::Kind) => Dimension::Kind,
        Ok(pb::Dimension::Period) => Dimension::Period,
        Ok(pb::Dimension::Unspecified) | Err(_) => return Err(format!("unknown dimension {d}")),
    })
}

/// The query of `req` (partner groups still to expand: their names, and the year).
pub(crate) fn query_in(req: &pb::QueryTradeRequest, v: &mut Violations) -> Option<(Query, u32)> {
    let reporters = countries(&req.reporters, "reporters", v);
    let partners = countries(&req.partners, "partners", v);
    let exclude_partners = countries(&req.exclude_partners, "exclude_partners", v);
    let flows = (req.flows.iter().enumerate())
        .filter_map(|(i, f)| {
            v.check(format!("flows[{i}]"), convert::flow(*f, true))
                .flatten()
        })
        .collect();
    let kinds = (req.kinds.iter().enumerate())
        .filter_map(|(i, k)| {
            v.check(format!("kinds[{i}]"), convert::kind(*k, true))
                .flatten()
        })
        .collect();
    let products = products(req, v);
    let frequency = v.check("frequency", convert::frequency(req.frequency, false));
    let frequency = frequency.flatten().unwrap_or(Frequency::Annual);
    let measure = convert::measure(req.measure, &req.quantity_unit, false, "", v);
    let target = v.check("aggregate_to", convert::frequency(req.aggregate_to, false));
    let plan = v.check("aggregate_to", ReadPlan::new(frequency, target.flatten()));
    for (field, text) in [
        ("start_period", &req.start_period),
        ("end_period", &req.end_period),
    ] {
        if text.is_empty() {
            v.add(field, "is required");
        }
    }
    let periods =
        plan.map(|p| convert::period_range(&req.start_period, &req.end_period, p.frequency, v));
    if let Some((from, to)) = periods {
        if from <= to && to - from >= MAX_PERIODS {
            v.add(
                "end_period",
                format!("at most {MAX_PERIODS} periods in the range"),
            );
        }
    }
    let level = match req.product_group_level {
        l @ (0 | 2 | 4 | 6) => l as u8,
        l => {
            v.add("product_group_level", format!("0, 2, 4 or 6, got {l}"));
            0
        }
    };
    let group_by = (req.group_by.iter().enumerate())
        .filter_map(|(i, d)| v.check(format!("group_by[{i}]"), dimension(*d, level)))
        .collect();
    let order = match pb::QueryOrder::try_from(req.order) {
        Ok(pb::QueryOrder::Unspecified) => Order::Group,
        Ok(pb::QueryOrder::Descending) => Order::Descending,
        Ok(pb::QueryOrder::Ascending) => Order::Ascending,
        Err(_) => {
            v.add("order", format!("unknown order {}", req.order));
            Order::Group
        }
    };
    let (plan, periods, measure) = (plan?, periods?, measure??);
    let year = tradepact_store::model::Period {
        frequency: plan.frequency,
        ordinal: periods.1,
    }
    .year();
    Some((
        Query {
            reporters,
            partners,
            exclude_partners,
            flows,
            kinds,
            products,
            frequency,
            measure,
            plan,
            periods,
            group_by,
            balance: req.balance,
            order,
            limit: req.limit as usize,
        },
        year,
    ))
}

pub(crate) fn cell_out(c: Cell) -> pb::QueryCell {
    pb::QueryCell {
        group: c.group,
        value: c.value,
        input_count: c.inputs,
        missing_input_count: c.missing,
        missing_inputs: c.missing_named,
    }
}
