//! Preparing and running data statements against the engine's rows.
//!
//! Cells live in kassandra's row maps; what CQL keeps beside a cell is kept in hidden cells of
//! the same row: `\0ttl:<column>` (the cell's expiry, unix ms) and `\0row` (the row marker an
//! INSERT writes, so that a row stays alive with no regular cell set, as in Cassandra) and
//! `\0ts:<column>` (the cell's write timestamp, microseconds: the request's default timestamp,
//! as the driver's `USING TIMESTAMP` or `Batch::set_timestamp` gives it, else the server's
//! clock). A write older than the cell's stored timestamp leaves the cell as it is: the
//! last-write-wins rule ScyllaDB applies to every cell. (A whole row's delete has no tombstone
//! here: it removes the row whatever its timestamps.) Static cells live in the partition's row
//! with the empty clustering key.

use std::{cmp::Ordering, collections::BTreeMap};

use bytes::{Bytes, BytesMut};

use super::{Assignment, Condition, Kind, Literal, Operator, Relation, Selector, Statement, Target, Term};
use crate::{
    cql::{
        self,
        column::ColumnType,
        schema::{ColumnKind, PrimaryKey, TableSchema},
        value::{deserialize_value, ClusteringKeyValue, CqlValue, PartitionKeyValue},
    },
    error::DbError,
    frame::{
        request::QueryParameters,
        response::{
            error::Error,
            result::{ColumnSpec, PartitionKeyIndex, PreparedMetadata, QueryResult, ResultMetadata, Row, Rows, TableSpec},
        },
        value::{FrameValue, PagingState},
        write,
    },
};

type Cells = BTreeMap<String, CqlValue>;
/// A row as statements see it: every live column with its expiry (unix ms), keys included.
type View = BTreeMap<String, (CqlValue, Option<i64>)>;

const MARKER: &str = "\0row";

fn ttl_cell(column: &str) -> String {
    format!("\0ttl:{column}")
}

fn ts_cell(column: &str) -> String {
    format!("\0ts:{column}")
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::new(DbError::Invalid, msg.into())
}

fn now_ms() -> i64 {
    now_us() / 1000
}

/// A write's timestamp when the request gives none: the server's clock, in microseconds.
fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// A bound or literal value: unset (the driver's "leave it"), null, or a value.
#[derive(Debug, Clone, PartialEq)]
enum Val {
    Unset,
    Null,
    V(CqlValue),
}

impl Val {
    fn value(&self) -> Option<&CqlValue> {
        match self {
            Val::V(v) => Some(v),
            _ => None,
        }
    }
}

fn column_type(schema: &TableSchema, column: &str) -> Result<ColumnType, Error> {
    schema
        .columns
        .get(column)
        .map(|c| c.ty.clone())
        .ok_or_else(|| invalid(format!("Undefined column name {column}")))
}

/// Every term of the statement in bind-marker order, with the name and type it binds to.
fn terms<'a>(schema: &TableSchema, kind: &'a Kind) -> Result<Vec<(&'a Term, String, ColumnType)>, Error> {
    let mut out = Vec::new();
    let int = |name: &str| (name.to_string(), ColumnType::Int);
    fn relations<'a>(
        schema: &TableSchema,
        rels: &'a [Relation],
        out: &mut Vec<(&'a Term, String, ColumnType)>,
    ) -> Result<(), Error> {
        for r in rels {
            let columns = match &r.target {
                Target::Column(c) => std::slice::from_ref(c),
                Target::Tuple(cs) | Target::Token(cs) => cs.as_slice(),
            };
            for (c, t) in columns.iter().zip(&r.terms) {
                out.push((t, c.clone(), column_type(schema, c)?));
            }
        }
        Ok(())
    }
    fn condition<'a>(
        schema: &TableSchema,
        cond: &'a Condition,
        out: &mut Vec<(&'a Term, String, ColumnType)>,
    ) -> Result<(), Error> {
        if let Condition::Columns(cs) = cond {
            for (c, t) in cs {
                out.push((t, c.clone(), column_type(schema, c)?));
            }
        }
        Ok(())
    }
    match kind {
        Kind::Select { relations: rels, limit, .. } => {
            relations(schema, rels, &mut out)?;
            if let Some(l) = limit {
                let (n, t) = int("[limit]");
                out.push((l, n, t));
            }
        }
        Kind::Insert { columns, values, ttl, .. } => {
            for (c, t) in columns.iter().zip(values) {
                out.push((t, c.clone(), column_type(schema, c)?));
            }
            if let Some(t) = ttl {
                let (n, ty) = int("[ttl]");
                out.push((t, n, ty));
            }
        }
        Kind::Update { ttl, assignments, relations: rels, condition: cond } => {
            if let Some(t) = ttl {
                let (n, ty) = int("[ttl]");
                out.push((t, n, ty));
            }
            for a in assignments {
                out.push((&a.term, a.column.clone(), column_type(schema, &a.column)?));
            }
            relations(schema, rels, &mut out)?;
            condition(schema, cond, &mut out)?;
        }
        Kind::Delete { relations: rels, condition: cond, .. } => {
            relations(schema, rels, &mut out)?;
            condition(schema, cond, &mut out)?;
        }
    }
    Ok(out)
}

/// Where in the partition key `term` (the value given for column `name`) binds it, if it binds
/// it by equality (an INSERT's value, or `=` in a relation).
fn partition_key_sequence(schema: &TableSchema, kind: &Kind, name: &str, term: &Term) -> Option<u16> {
    let position = schema.partition_key.into_iter().position(|p| p == name)? as u16;
    let by_equality = match kind {
        Kind::Insert { .. } => true,
        Kind::Select { relations, .. } | Kind::Update { relations, .. } | Kind::Delete { relations, .. } => {
            relations.iter().any(|r| {
                r.op == Operator::Eq && r.target == Target::Column(name.to_string()) && std::ptr::eq(&r.terms[0], term)
            })
        }
    };
    by_equality.then_some(position)
}

fn table<E: cql::Engine>(engine: &E, st: &Statement) -> Result<TableSchema, Error> {
    engine
        .get_table(&st.keyspace, &st.table)
        .cloned()
        .ok_or_else(|| invalid(format!("unconfigured table {}.{}", st.keyspace, st.table)))
}

/// The bind markers' metadata and the result's columns.
pub fn prepare<E: cql::Engine>(engine: &E, st: &Statement) -> Result<(PreparedMetadata, ResultMetadata), Error> {
    let schema = table(engine, st)?;
    let spec = TableSpec { ks_name: st.keyspace.clone(), table_name: st.table.clone() };
    let mut pk_indexes = Vec::new();
    let mut col_specs = Vec::new();
    for (term, name, ty) in terms(&schema, &st.kind)? {
        if *term != Term::Marker {
            continue;
        }
        if let Some(sequence) = partition_key_sequence(&schema, &st.kind, &name, term) {
            pk_indexes.push(PartitionKeyIndex { index: col_specs.len() as u16, sequence });
        }
        col_specs.push(ColumnSpec::new(name, ty));
    }
    let result = match &st.kind {
        Kind::Select { selectors, .. } => ResultMetadata {
            global_spec: Some(spec.clone()),
            paging_state: None,
            col_specs: select_columns(&schema, selectors)?.into_iter().map(|(_, s)| s).collect(),
        },
        _ => ResultMetadata::empty(),
    };
    Ok((PreparedMetadata { pk_indexes, global_spec: Some(spec), col_specs }, result))
}

fn literal(ty: &ColumnType, lit: &Literal) -> Result<Val, Error> {
    Ok(match (ty, lit) {
        (_, Literal::Null) => Val::Null,
        (ColumnType::Int, Literal::Int(n)) => Val::V(CqlValue::Int(*n as i32)),
        (ColumnType::BigInt, Literal::Int(n)) => Val::V(CqlValue::BigInt(*n)),
        (ColumnType::SmallInt, Literal::Int(n)) => Val::V(CqlValue::SmallInt(*n as i16)),
        (ColumnType::TinyInt, Literal::Int(n)) => Val::V(CqlValue::TinyInt(*n as i8)),
        (ColumnType::Counter, Literal::Int(n)) => Val::V(CqlValue::Counter(*n)),
        (ColumnType::Timestamp, Literal::Int(n)) => Val::V(CqlValue::Timestamp(*n)),
        (ColumnType::Text, Literal::Text(s)) => Val::V(CqlValue::Text(s.clone())),
        (ColumnType::Ascii, Literal::Text(s)) => Val::V(CqlValue::Ascii(s.clone())),
        (ColumnType::Boolean, Literal::Bool(b)) => Val::V(CqlValue::Boolean(*b)),
        (ColumnType::Uuid, Literal::Uuid(u)) => Val::V(CqlValue::Uuid(*u)),
        (ColumnType::Timeuuid, Literal::Uuid(u)) => Val::V(CqlValue::Timeuuid(*u)),
        (ty, lit) => return Err(invalid(format!("Invalid literal {lit:?} for a column of type {ty:?}"))),
    })
}

/// The statement's terms resolved in order: literals converted, markers read from the frame.
fn resolve(schema: &TableSchema, kind: &Kind, data: &[FrameValue<'_>]) -> Result<Vec<Val>, Error> {
    let terms = terms(schema, kind)?;
    let markers = terms.iter().filter(|(t, ..)| **t == Term::Marker).count();
    if markers != data.len() {
        return Err(invalid(format!("There were {markers} markers(?) in CQL but {} bound variables", data.len())));
    }
    let mut data = data.iter();
    terms
        .iter()
        .map(|(term, name, ty)| match term {
            Term::Literal(l) => literal(ty, l),
            Term::Marker => Ok(match data.next().expect("counted above") {
                FrameValue::NotSet => Val::Unset,
                FrameValue::Null => Val::Null,
                FrameValue::Some(bytes) => match deserialize_value(bytes, ty) {
                    Ok(CqlValue::Empty) => Val::Null,
                    Ok(v) => Val::V(v),
                    Err(e) => return Err(invalid(format!("Invalid value for {name}: {}", e.reason))),
                },
            }),
        })
        .collect()
}

/// A relation with its values.
struct Bound<'a> {
    relation: &'a Relation,
    values: Vec<Val>,
}

fn bind_relations<'a>(rels: &'a [Relation], vals: &mut impl Iterator<Item = Val>) -> Vec<Bound<'a>> {
    rels.iter()
        .map(|relation| Bound { relation, values: relation.terms.iter().map(|_| vals.next().expect("resolved")).collect() })
        .collect()
}

/// The values given by `column = value`.
fn equalities(bound: &[Bound<'_>]) -> BTreeMap<String, CqlValue> {
    bound
        .iter()
        .filter(|b| b.relation.op == Operator::Eq)
        .filter_map(|b| match (&b.relation.target, b.values[0].value()) {
            (Target::Column(c), Some(v)) => Some((c.clone(), v.clone())),
            _ => None,
        })
        .collect()
}

fn partition_key(schema: &TableSchema, values: &BTreeMap<String, CqlValue>) -> Option<PartitionKeyValue> {
    let parts: Option<Vec<CqlValue>> = schema.partition_key.into_iter().map(|c| values.get(c).cloned()).collect();
    let mut parts = parts?;
    Some(match schema.partition_key {
        PrimaryKey::Simple(_) => PartitionKeyValue::Simple(parts.pop()?),
        _ => PartitionKeyValue::Composite(parts),
    })
}

/// The full clustering key, or None when a column of it is missing.
fn clustering_key(schema: &TableSchema, values: &BTreeMap<String, CqlValue>) -> Option<ClusteringKeyValue> {
    let parts: Option<Vec<CqlValue>> = schema.clustering_key.into_iter().map(|c| values.get(c).cloned()).collect();
    let parts = parts?;
    Some(match schema.clustering_key {
        PrimaryKey::Empty => ClusteringKeyValue::Empty,
        PrimaryKey::Simple(_) => ClusteringKeyValue::Simple(parts.into_iter().next()),
        PrimaryKey::Composite(_) => ClusteringKeyValue::Composite(parts.into_iter().map(Some).collect()),
    })
}

fn has_clustering(schema: &TableSchema) -> bool {
    schema.clustering_key.count() > 0
}

/// The live value of a cell and its expiry.
fn live(cells: &Cells, column: &str, now: i64) -> Option<(CqlValue, Option<i64>)> {
    let v = cells.get(column)?;
    if *v == CqlValue::Empty {
        return None;
    }
    let expiry = match cells.get(&ttl_cell(column)) {
        Some(CqlValue::BigInt(at)) if *at <= now => return None,
        Some(CqlValue::BigInt(at)) => Some(*at),
        _ => None,
    };
    Some((v.clone(), expiry))
}

fn regular_alive(schema: &TableSchema, cells: &Cells, now: i64) -> bool {
    live(cells, MARKER, now).is_some()
        || schema
            .columns
            .iter()
            .any(|(n, c)| c.kind == ColumnKind::Regular && live(cells, n, now).is_some())
}

fn static_alive(schema: &TableSchema, cells: &Cells, now: i64) -> bool {
    schema
        .columns
        .iter()
        .any(|(n, c)| c.kind == ColumnKind::Static && live(cells, n, now).is_some())
}

/// The row as statements see it. `row` None: the partition's static part alone.
fn view(
    schema: &TableSchema,
    pk: &PartitionKeyValue,
    ck: Option<&ClusteringKeyValue>,
    row: Option<&Cells>,
    statics: Option<&Cells>,
    now: i64,
) -> View {
    let mut out = View::new();
    for (name, value) in schema.partition_key.into_iter().zip(pk) {
        out.insert(name.clone(), (value.clone(), None));
    }
    if let Some(ck) = ck {
        for (name, value) in schema.clustering_key.into_iter().zip(ck) {
            if let Some(v) = value {
                out.insert(name.clone(), (v.clone(), None));
            }
        }
    }
    for (name, column) in &schema.columns {
        let source = match column.kind {
            ColumnKind::Regular => row,
            ColumnKind::Static => statics,
            _ => None,
        };
        if let Some(v) = source.and_then(|cells| live(cells, name, now)) {
            out.insert(name.clone(), v);
        }
    }
    out
}

type Partition = Vec<(ClusteringKeyValue, Cells)>;

fn read_partition<E: cql::Engine>(engine: &mut E, st: &Statement, pk: &PartitionKeyValue) -> Result<Partition, Error> {
    Ok(engine
        .read(&st.keyspace, &st.table, pk, ..)?
        .map(|e| (e.clustering, e.row))
        .collect())
}

/// The row at (pk, ck) and the partition's static cells, as stored.
fn current<E: cql::Engine>(
    engine: &mut E,
    st: &Statement,
    schema: &TableSchema,
    pk: &PartitionKeyValue,
    ck: Option<&ClusteringKeyValue>,
) -> Result<(Option<Cells>, Option<Cells>), Error> {
    let mut row = None;
    let mut statics = None;
    for (key, cells) in read_partition(engine, st, pk)? {
        if has_clustering(schema) && key == ClusteringKeyValue::Empty {
            statics = Some(cells);
        } else if Some(&key) == ck {
            row = Some(cells);
        }
    }
    Ok((row, statics))
}

/// The token a partition sorts by in scans: a hash of its serialized key (not Murmur3: only
/// the order's consistency between `token(col)` and `token(?)` is relied upon).
fn token(pk: &PartitionKeyValue) -> i64 {
    let mut buf = BytesMut::new();
    write::partition_value(&mut buf, pk);
    seahash::hash(&buf) as i64
}

fn holds(op: Operator, ord: Ordering) -> bool {
    match op {
        Operator::Eq => ord == Ordering::Equal,
        Operator::Lt => ord == Ordering::Less,
        Operator::Le => ord != Ordering::Greater,
        Operator::Gt => ord == Ordering::Greater,
        Operator::Ge => ord != Ordering::Less,
    }
}

fn matches(schema: &TableSchema, b: &Bound<'_>, pk: &PartitionKeyValue, row: &View) -> bool {
    let Some(values): Option<Vec<&CqlValue>> = b.values.iter().map(Val::value).collect() else {
        return false;
    };
    match &b.relation.target {
        Target::Column(c) => row.get(c).is_some_and(|(v, _)| holds(b.relation.op, v.cmp(values[0]))),
        Target::Tuple(cs) => {
            let Some(have): Option<Vec<&CqlValue>> = cs.iter().map(|c| row.get(c).map(|(v, _)| v)).collect() else {
                return false;
            };
            holds(b.relation.op, have.cmp(&values))
        }
        Target::Token(_) => {
            let given = match schema.partition_key {
                PrimaryKey::Simple(_) => PartitionKeyValue::Simple(values[0].clone()),
                _ => PartitionKeyValue::Composite(values.into_iter().cloned().collect()),
            };
            holds(b.relation.op, token(pk).cmp(&token(&given)))
        }
    }
}

/// Clustering order, with the table's descending columns reversed.
fn clustering_order(schema: &TableSchema, a: &ClusteringKeyValue, b: &ClusteringKeyValue) -> Ordering {
    for ((name, x), y) in schema.clustering_key.into_iter().zip(a).zip(b) {
        let o = x.cmp(y);
        let o = if schema.descending.contains(name) { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

fn select_columns(schema: &TableSchema, selectors: &[Selector]) -> Result<Vec<(Selector, ColumnSpec)>, Error> {
    if selectors.is_empty() {
        return Ok(schema
            .columns
            .iter()
            .map(|(n, c)| (Selector::Column(n.clone()), ColumnSpec::new(n.clone(), c.ty.clone())))
            .collect());
    }
    selectors
        .iter()
        .map(|s| {
            Ok(match s {
                Selector::Column(c) => (s.clone(), ColumnSpec::new(c.clone(), column_type(schema, c)?)),
                Selector::Ttl(c) => {
                    column_type(schema, c)?;
                    (s.clone(), ColumnSpec::new(format!("ttl({c})"), ColumnType::Int))
                }
            })
        })
        .collect()
}

fn limit(v: Option<Val>) -> Result<usize, Error> {
    match v {
        None | Some(Val::Unset) | Some(Val::Null) => Ok(usize::MAX),
        Some(Val::V(CqlValue::Int(n))) if n > 0 => Ok(n as usize),
        Some(other) => Err(invalid(format!("LIMIT must be strictly positive: {other:?}"))),
    }
}

fn ttl_secs(v: Option<Val>) -> Result<i64, Error> {
    match v {
        None | Some(Val::Unset) | Some(Val::Null) => Ok(0),
        Some(Val::V(CqlValue::Int(n))) if n >= 0 => Ok(n as i64),
        Some(other) => Err(invalid(format!("A TTL must be greater or equal to 0: {other:?}"))),
    }
}

/// Where a page starts: the paging state's row mark holds how many rows earlier pages gave (the
/// query runs again for each page, so a write between pages may shift rows: a test server's
/// paging, not a snapshot).
fn page_start(params: &QueryParameters<'_>) -> usize {
    params
        .paging_state
        .as_ref()
        .and_then(|p| p.row_mark.as_ref())
        .and_then(|m| <[u8; 8]>::try_from(m.as_ref()).ok())
        .map_or(0, |b| u64::from_be_bytes(b) as usize)
}

fn select<E: cql::Engine>(
    engine: &mut E,
    st: &Statement,
    schema: &TableSchema,
    selectors: &[Selector],
    bound: &[Bound<'_>],
    limit: usize,
    params: &QueryParameters<'_>,
) -> Result<QueryResult, Error> {
    let now = now_ms();
    let eq = equalities(bound);
    let partitions: Vec<(PartitionKeyValue, Partition)> = match partition_key(schema, &eq) {
        Some(pk) => {
            let rows = read_partition(engine, st, &pk)?;
            vec![(pk, rows)]
        }
        None => {
            let mut out: Vec<(PartitionKeyValue, Partition)> = Vec::new();
            for e in engine.scan(&st.keyspace, &st.table, ..)? {
                match out.last_mut() {
                    Some((pk, rows)) if *pk == e.partition => rows.push((e.clustering, e.row)),
                    _ => out.push((e.partition, vec![(e.clustering, e.row)])),
                }
            }
            out.sort_by_cached_key(|(pk, _)| token(pk));
            out
        }
    };
    let restricts_clustering = bound.iter().any(|b| match &b.relation.target {
        Target::Column(c) => schema.clustering_key.into_iter().any(|k| k == c),
        Target::Tuple(_) => true,
        Target::Token(_) => false,
    });
    let columns = select_columns(schema, selectors)?;
    let mut rows = Vec::new();
    'partitions: for (pk, partition) in &partitions {
        let statics = if has_clustering(schema) {
            partition.iter().find(|(ck, _)| *ck == ClusteringKeyValue::Empty).map(|(_, c)| c)
        } else {
            None
        };
        let mut views: Vec<(ClusteringKeyValue, View)> = partition
            .iter()
            .filter(|(ck, cells)| {
                (!has_clustering(schema) || *ck != ClusteringKeyValue::Empty) && regular_alive(schema, cells, now)
            })
            .map(|(ck, cells)| (ck.clone(), view(schema, pk, Some(ck), Some(cells), statics, now)))
            .collect();
        if views.is_empty() && !restricts_clustering && statics.is_some_and(|s| static_alive(schema, s, now)) {
            views.push((ClusteringKeyValue::Empty, view(schema, pk, None, None, statics, now)));
        }
        views.sort_by(|a, b| clustering_order(schema, &a.0, &b.0));
        for (_, v) in views {
            if !bound.iter().all(|b| matches(schema, b, pk, &v)) {
                continue;
            }
            rows.push(Row {
                columns: columns
                    .iter()
                    .map(|(s, _)| match s {
                        Selector::Column(c) => v.get(c).map(|(x, _)| x.clone()),
                        Selector::Ttl(c) => v
                            .get(c)
                            .and_then(|(_, at)| *at)
                            .map(|at| CqlValue::Int(((at - now + 999) / 1000) as i32)),
                    })
                    .collect(),
            });
            if rows.len() >= limit {
                break 'partitions;
            }
        }
    }
    // Pages of `result_page_size` rows (all at once when the driver asks for no paging).
    let start = page_start(params);
    let page = params.result_page_size.filter(|n| *n > 0).unwrap_or(usize::MAX);
    let total = rows.len();
    let rows: Vec<Row> = rows.into_iter().skip(start).take(page).collect();
    let next = start.saturating_add(page);
    let paging_state = (next < total).then(|| {
        PagingState::new(None, Some(Bytes::copy_from_slice(&(next as u64).to_be_bytes())), total - next, 0)
    });
    Ok(QueryResult::Rows(Rows {
        metadata: ResultMetadata {
            global_spec: Some(TableSpec { ks_name: st.keyspace.clone(), table_name: st.table.clone() }),
            paging_state,
            col_specs: columns.into_iter().map(|(_, s)| s).collect(),
        },
        rows,
    }))
}

/// Writes cells (None: delete the cell), each with the TTL (0: none) and the write's timestamp;
/// static columns to the partition's static row. A cell whose stored timestamp is newer than
/// `ts` is left as it is (last write wins; a tie goes to the later write).
#[allow(clippy::too_many_arguments)]
fn write_cells<E: cql::Engine>(
    engine: &mut E,
    st: &Statement,
    schema: &TableSchema,
    pk: &PartitionKeyValue,
    ck: Option<&ClusteringKeyValue>,
    cells: Vec<(String, Option<CqlValue>)>,
    ttl: i64,
    marker: bool,
    ts: i64,
) -> Result<(), Error> {
    let now = now_ms();
    let expiry = |c: &str| (ttl_cell(c), if ttl > 0 { CqlValue::BigInt(now + ttl * 1000) } else { CqlValue::Empty });
    let (row_now, statics_now) = current(engine, st, schema, pk, ck)?;
    let newer = |stored: Option<&Cells>, c: &str| {
        matches!(stored.and_then(|cells| cells.get(&ts_cell(c))), Some(CqlValue::BigInt(at)) if *at > ts)
    };
    let mut regular = Vec::new();
    let mut statics = Vec::new();
    for (c, v) in cells {
        let kind = &schema.columns.get(&c).ok_or_else(|| invalid(format!("Undefined column name {c}")))?.kind;
        let (target, stored) = match kind {
            ColumnKind::Static => (&mut statics, statics_now.as_ref()),
            ColumnKind::Regular => (&mut regular, row_now.as_ref()),
            _ => continue,
        };
        if newer(stored, &c) {
            continue;
        }
        target.push(expiry(&c));
        target.push((ts_cell(&c), CqlValue::BigInt(ts)));
        target.push((c, v.unwrap_or(CqlValue::Empty)));
    }
    if marker {
        regular.push(expiry(MARKER));
        regular.push((MARKER.to_string(), CqlValue::Boolean(true)));
    }
    if !statics.is_empty() {
        engine.insert(&st.keyspace, &st.table, pk.clone(), ClusteringKeyValue::Empty, statics)?;
    }
    if !regular.is_empty() {
        let ck = ck.ok_or_else(|| invalid("Some clustering keys are missing"))?;
        engine.insert(&st.keyspace, &st.table, pk.clone(), ck.clone(), regular)?;
    }
    Ok(())
}

/// The current state a condition is checked against: whether the row exists, and its columns
/// (the partition's static columns among them even when the clustered row does not exist).
#[derive(Default)]
struct Old {
    exists: bool,
    view: View,
}

/// ScyllaDB's answer to a conditional statement: `[applied]` and the old values of the
/// condition's columns (every column for `IF [NOT] EXISTS`), null where there were none.
fn lwt_result(st: &Statement, schema: &TableSchema, cond: &Condition, applied: bool, old: &Old) -> QueryResult {
    let columns: Vec<String> = match cond {
        Condition::Columns(cs) => {
            let mut names: Vec<String> = Vec::new();
            for (c, _) in cs {
                if !names.contains(c) {
                    names.push(c.clone());
                }
            }
            names
        }
        _ => schema.columns.keys().cloned().collect(),
    };
    let mut col_specs = vec![ColumnSpec::new("[applied]", ColumnType::Boolean)];
    let mut row = vec![Some(CqlValue::Boolean(applied))];
    for c in columns {
        let ty = schema.columns.get(&c).map(|x| x.ty.clone()).unwrap_or(ColumnType::Blob);
        col_specs.push(ColumnSpec::new(c.clone(), ty));
        let have = match cond {
            Condition::NotExists | Condition::Exists if !old.exists => None,
            _ => old.view.get(&c).map(|(v, _)| v.clone()),
        };
        row.push(have);
    }
    QueryResult::Rows(Rows {
        metadata: ResultMetadata {
            global_spec: Some(TableSpec { ks_name: st.keyspace.clone(), table_name: st.table.clone() }),
            paging_state: None,
            col_specs,
        },
        rows: vec![Row { columns: row }],
    })
}

/// Whether the condition holds on the current row.
fn condition_holds(cond: &Condition, values: &[Val], old: &Old) -> bool {
    match cond {
        Condition::None => true,
        Condition::NotExists => !old.exists,
        Condition::Exists => old.exists,
        Condition::Columns(cs) => cs.iter().zip(values).all(|((c, _), want)| {
            let have = old.view.get(c).map(|(v, _)| v);
            have == want.value()
        }),
    }
}

/// A write's answer: with its condition failing, ScyllaDB's `[applied] = false` row and nothing
/// written; else `write` runs (unless `dry`: a batch's conditions are all checked before any of
/// its statements runs), and a conditional statement answers `[applied] = true`.
fn conditional(
    st: &Statement,
    schema: &TableSchema,
    condition: &Condition,
    values: &[Val],
    old: &Old,
    dry: bool,
    write: impl FnOnce() -> Result<(), Error>,
) -> Result<QueryResult, Error> {
    if !condition_holds(condition, values, old) {
        return Ok(lwt_result(st, schema, condition, false, old));
    }
    if !dry {
        write()?;
    }
    Ok(match condition {
        Condition::None => QueryResult::Void,
        _ => lwt_result(st, schema, condition, true, old),
    })
}

/// The row at (pk, ck) with the partition's statics; with no clustering key given (a
/// statement on the partition or its static columns), the statics alone.
fn old_row<E: cql::Engine>(
    engine: &mut E,
    st: &Statement,
    schema: &TableSchema,
    pk: &PartitionKeyValue,
    ck: Option<&ClusteringKeyValue>,
) -> Result<Old, Error> {
    let now = now_ms();
    let (row, statics) = current(engine, st, schema, pk, ck)?;
    let row = row.filter(|r| regular_alive(schema, r, now));
    let exists = match ck {
        Some(_) => row.is_some(),
        None => statics.as_ref().is_some_and(|s| static_alive(schema, s, now)),
    };
    Ok(Old { exists, view: view(schema, pk, ck, row.as_ref(), statics.as_ref(), now) })
}

/// Runs a data statement.
pub fn execute<E: cql::Engine>(engine: &mut E, st: &Statement, params: &QueryParameters<'_>) -> Result<QueryResult, Error> {
    run(engine, st, params, false)
}

/// Checks a conditional statement's condition without writing: `None` if it holds (or the
/// statement has none), else ScyllaDB's `[applied] = false` answer. A conditional batch asks
/// this of each of its statements first, and applies all of them or none.
pub fn check<E: cql::Engine>(
    engine: &mut E,
    st: &Statement,
    params: &QueryParameters<'_>,
) -> Result<Option<QueryResult>, Error> {
    Ok(match run(engine, st, params, true)? {
        QueryResult::Void => None,
        QueryResult::Rows(r) if is_applied(&r) => None,
        other => Some(other),
    })
}

/// Whether a statement is conditional (`IF ...`).
pub fn is_conditional(st: &Statement) -> bool {
    match &st.kind {
        Kind::Select { .. } => false,
        Kind::Insert { condition, .. } | Kind::Update { condition, .. } | Kind::Delete { condition, .. } => {
            *condition != Condition::None
        }
    }
}

fn is_applied(r: &Rows) -> bool {
    r.rows.first().and_then(|row| row.columns.first()).is_some_and(|c| *c == Some(CqlValue::Boolean(true)))
}

fn run<E: cql::Engine>(
    engine: &mut E,
    st: &Statement,
    params: &QueryParameters<'_>,
    dry: bool,
) -> Result<QueryResult, Error> {
    let schema = table(engine, st)?;
    let ts = params.default_timestamp.unwrap_or_else(now_us);
    let mut vals = resolve(&schema, &st.kind, &params.data)?.into_iter();
    match &st.kind {
        Kind::Select { selectors, relations, .. } => {
            let bound = bind_relations(relations, &mut vals);
            let limit = limit(vals.next())?;
            select(engine, st, &schema, selectors, &bound, limit, params)
        }
        Kind::Insert { columns, condition, .. } => {
            let given: Vec<(String, Val)> = columns.iter().cloned().zip(vals.by_ref().take(columns.len())).collect();
            let ttl = ttl_secs(vals.next())?;
            let keys: BTreeMap<String, CqlValue> =
                given.iter().filter_map(|(c, v)| Some((c.clone(), v.value()?.clone()))).collect();
            let pk = partition_key(&schema, &keys).ok_or_else(|| invalid("Some partition key parts are missing"))?;
            let ck = clustering_key(&schema, &keys).ok_or_else(|| invalid("Some clustering keys are missing"))?;
            let old = match condition {
                Condition::None => Old::default(),
                _ => old_row(engine, st, &schema, &pk, Some(&ck))?,
            };
            conditional(st, &schema, condition, &[], &old, dry, || {
                let cells = given
                    .into_iter()
                    .filter(|(_, v)| *v != Val::Unset)
                    .map(|(c, v)| (c, v.value().cloned()))
                    .collect();
                write_cells(engine, st, &schema, &pk, Some(&ck), cells, ttl, true, ts)
            })
        }
        Kind::Update { ttl, assignments, relations, condition } => {
            let ttl = match ttl {
                Some(_) => ttl_secs(vals.next())?,
                None => 0,
            };
            let set: Vec<(&Assignment, Val)> = assignments.iter().zip(vals.by_ref().take(assignments.len())).collect();
            let bound = bind_relations(relations, &mut vals);
            let cond_values: Vec<Val> = vals.collect();
            let eq = equalities(&bound);
            let pk = partition_key(&schema, &eq).ok_or_else(|| invalid("Some partition key parts are missing"))?;
            let ck = clustering_key(&schema, &eq);
            let only_statics = set.iter().all(|(a, _)| {
                schema.columns.get(&a.column).is_some_and(|c| c.kind == ColumnKind::Static)
            });
            if ck.is_none() && !only_statics {
                return Err(invalid("Some clustering keys are missing"));
            }
            let needs_old = *condition != Condition::None || set.iter().any(|(a, _)| a.add);
            let old = match needs_old {
                true => old_row(engine, st, &schema, &pk, ck.as_ref())?,
                false => Old::default(),
            };
            conditional(st, &schema, condition, &cond_values, &old, dry, || {
                let mut cells = Vec::new();
                for (a, v) in set {
                    if v == Val::Unset {
                        continue;
                    }
                    let value = if a.add {
                        let have = match old.view.get(&a.column) {
                            Some((CqlValue::Counter(n), _)) => *n,
                            _ => 0,
                        };
                        let delta = match v.value() {
                            Some(CqlValue::Counter(n)) | Some(CqlValue::BigInt(n)) => *n,
                            other => return Err(invalid(format!("Invalid counter increment {other:?}"))),
                        };
                        Some(CqlValue::Counter(have + delta))
                    } else {
                        v.value().cloned()
                    };
                    cells.push((a.column.clone(), value));
                }
                write_cells(engine, st, &schema, &pk, ck.as_ref(), cells, ttl, false, ts)
            })
        }
        Kind::Delete { columns, relations, condition } => {
            let bound = bind_relations(relations, &mut vals);
            let cond_values: Vec<Val> = vals.collect();
            let eq = equalities(&bound);
            let pk = partition_key(&schema, &eq).ok_or_else(|| invalid("Some partition key parts are missing"))?;
            let ck = clustering_key(&schema, &eq);
            // (Restricting a clustering column implies the table has some.)
            let restricts_clustering = schema.clustering_key.into_iter().any(|k| eq.contains_key(k));
            if ck.is_none() && restricts_clustering {
                return Err(invalid("A DELETE names the whole clustering key or none of it here"));
            }
            let old = match condition {
                Condition::None => Old::default(),
                _ => old_row(engine, st, &schema, &pk, ck.as_ref())?,
            };
            conditional(st, &schema, condition, &cond_values, &old, dry, || {
                if !columns.is_empty() {
                    let cells = columns.iter().map(|c| (c.clone(), None)).collect();
                    write_cells(engine, st, &schema, &pk, ck.as_ref(), cells, 0, false, ts)
                } else {
                    // A clustered row only (the partition's statics stay), or, with no clustering
                    // key given or none in the table (`clustering_key` is then `Empty`), the
                    // partition's `Empty` row.
                    engine.delete(&st.keyspace, &st.table, pk.clone(), ck.unwrap_or(ClusteringKeyValue::Empty))?;
                    Ok(())
                }
            })
        }
    }
}
