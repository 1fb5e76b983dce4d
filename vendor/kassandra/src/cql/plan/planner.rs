use tracing::{instrument, Level};

use crate::{
    cql::{
        column::{self, Column, ColumnKind},
        execution::{
            self,
            selector::{ColumnsSelector, Transform},
            AlterSchema, DeleteNode, InsertNode, ScanNode, SelectNode,
        },
        functions::CqlFunction,
        plan::{data_reader, Aggregate, Plan},
        query::{
            self, CreateKeyspaceQuery, CreateTableQuery, DeleteQuery, InsertQuery, QueryString,
            QueryValue, SelectExpression, SelectQuery,
        },
        schema::{keyspace::Strategy, PrimaryKey, PrimaryKeyColumn, TableSchema},
        types::PreCqlType,
        value::{ClusteringKeyValue, ClusteringKeyValueRange, CqlValue, PartitionKeyValue},
        Catalog,
    },
    error::DbError,
    frame::{
        parse,
        request::QueryParameters,
        response::{
            error::Error,
            result::{ColumnSpec, PartitionKeyIndex, PreparedMetadata, ResultMetadata, TableSpec},
        },
        value::PagingState,
    },
};

pub struct Planner<C: Catalog> {
    catalog: C,
    use_keyspace: Option<String>,
}

impl<C: Catalog> Planner<C> {
    pub fn new(catalog: C, use_keyspace: Option<String>) -> Self {
        Self {
            catalog,
            use_keyspace,
        }
    }

    #[instrument(level = Level::TRACE, skip(self), err)]
    pub fn build(
        &mut self,
        statement: QueryString,
        parameters: QueryParameters<'_>,
    ) -> Result<Plan, Error> {
        match statement {
            QueryString::Select(select) if !select.r#where.is_empty() => {
                self.select(select, parameters)
            }

            QueryString::Select(select) => self.scan(select, parameters),
            QueryString::Insert(insert) => self.insert(insert, parameters),
            QueryString::Delete(delete) if delete.columns.is_empty() => {
                self.delete(delete, parameters)
            }
            QueryString::Delete(delete) => self.delete_columns(delete, parameters),
            QueryString::Use { .. } => unimplemented!(),
            QueryString::CreateKeyspace(create) => self.create_keyspace(create),
            QueryString::CreateTable(create) => self.create_table(create),
            QueryString::CreateType { .. } => unimplemented!(),
            QueryString::Dml(_) => Err(Error::new(DbError::Invalid, "data statements run in cql::dml")),
        }
    }

    #[instrument(level = Level::TRACE, skip(self), err)]
    pub fn prepare(
        &mut self,
        statement: QueryString,
    ) -> Result<(PreparedMetadata, ResultMetadata), Error> {
        match statement {
            QueryString::Select(select) => self.prepare_select(select),
            QueryString::Insert(insert) => self.prepare_insert(insert),
            QueryString::Delete(delete) if delete.columns.is_empty() => self.prepare_delete(delete),

            _ => Err(Error::new(
                DbError::Invalid,
                "Can't prepare this type of query",
            )),
        }
    }

    fn insert(&mut self, insert: InsertQuery, parameters: QueryParameters) -> Result<Plan, Error> {
        let InsertQuery {
            keyspace,
            table,
            columns,
            values,
        } = insert;
        let keyspace = keyspace
            .or(self.use_keyspace.clone())
            .ok_or(Error::new(DbError::Invalid, "Keyspace is not specified"))?;

        if values.len() != columns.len() {
            return Err(Error::new(
                DbError::SyntaxError,
                "Missmatch the amount of columns and values",
            ));
        }

        let schema = self.catalog.get_table(&keyspace, &table).ok_or(Error::new(
            DbError::Invalid,
            "Keyspace or table does nor exist",
        ))?;

        let values = data_reader::DataPayload::read(
            schema,
            columns.into_iter().zip(values),
            parameters.data,
        )?;

        let partition_key = values.get_partition_key()?;
        let clustering_key = values.get_clustering_key()?;

        let values = values
            .raw
            .into_iter()
            .filter_map(|(k, v)| Some((k, v?)))
            .collect();

        let insert = InsertNode {
            keyspace,
            table,
            partition_key,
            clustering_key,
            values,
        };

        Ok(Plan::Insert(insert))
    }

    fn prepare_insert(
        &mut self,
        insert: InsertQuery,
    ) -> Result<(PreparedMetadata, ResultMetadata), Error> {
        let InsertQuery {
            keyspace,
            table,
            columns,
            values,
        } = insert;
        let keyspace = keyspace
            .or(self.use_keyspace.clone())
            .ok_or(Error::new(DbError::Invalid, "Keyspace is not specified"))?;

        if values.len() != columns.len() {
            return Err(Error::new(
                DbError::SyntaxError,
                "Mismatch the amount of columns and values",
            ));
        }

        let schema = self.catalog.get_table(&keyspace, &table).ok_or(Error::new(
            DbError::Invalid,
            "Keyspace or table does nor exist",
        ))?;

        let prepared_metadata = prepared_metadata(
            &keyspace,
            &table,
            schema,
            columns.into_iter().zip(values.into_iter()),
        )?;

        let result_metadata = ResultMetadata::empty();

        Ok((prepared_metadata, result_metadata))
    }

    fn delete_columns(
        &mut self,
        delete: DeleteQuery,
        parameters: QueryParameters,
    ) -> Result<Plan, Error> {
        assert!(
            !delete.columns.is_empty(),
            "Other method should be called for that"
        );

        let keyspace = delete
            .keyspace
            .or(self.use_keyspace.clone())
            .ok_or(Error::new(DbError::Invalid, "Keyspace is not specified"))?;
        let schema = self
            .catalog
            .get_table(&keyspace, &delete.table)
            .ok_or(Error::new(
                DbError::Invalid,
                "Keyspace or table does nor exist",
            ))?;

        let values = data_reader::DataPayload::read(
            schema,
            delete.r#where.statements.into_iter(),
            parameters.data,
        )?;

        let partition_key = values.get_partition_key()?;
        let clustering_key = values
            .get_clustering_key()
            .unwrap_or(ClusteringKeyValue::Empty);
        let mut values = vec![];
        for column in delete.columns {
            if schema.columns.get(&column).is_none() {
                return Err(Error::new(
                    DbError::Invalid,
                    format!("Unknown column `{column}`"),
                ));
            }
            values.push((column, CqlValue::Empty));
        }

        Ok(Plan::Insert(InsertNode {
            keyspace,
            table: delete.table,
            partition_key,
            clustering_key,
            values,
        }))
    }

    fn delete(&mut self, delete: DeleteQuery, parameters: QueryParameters) -> Result<Plan, Error> {
        assert!(
            delete.columns.is_empty(),
            "Other method should be called for that"
        );

        let keyspace = delete
            .keyspace
            .or(self.use_keyspace.clone())
            .ok_or(Error::new(DbError::Invalid, "Keyspace is not specified"))?;
        let schema = self
            .catalog
            .get_table(&keyspace, &delete.table)
            .ok_or(Error::new(
                DbError::Invalid,
                "Keyspace or table does nor exist",
            ))?;

        let values = data_reader::DataPayload::read(
            schema,
            delete.r#where.statements.into_iter(),
            parameters.data,
        )?;

        let partition_key = values.get_partition_key()?;
        let clustering_key = values
            .get_clustering_key()
            .unwrap_or(ClusteringKeyValue::Empty);

        Ok(Plan::Delete(DeleteNode {
            keyspace,
            table: delete.table,
            partition_key,
            clustering_key,
        }))
    }

    fn prepare_delete(
        &mut self,
        delete: DeleteQuery,
    ) -> Result<(PreparedMetadata, ResultMetadata), Error> {
        assert!(delete.columns.is_empty(), "Other method should be called");
        let DeleteQuery {
            keyspace,
            table,
            r#where,
            ..
        } = delete;

        let keyspace = keyspace
            .or(self.use_keyspace.clone())
            .ok_or(Error::new(DbError::Invalid, "Keyspace is not specified"))?;

        let schema = self.catalog.get_table(&keyspace, &table).ok_or(Error::new(
            DbError::Invalid,
            "Keyspace or table does nor exist",
        ))?;

        let prepared_metadata =
            prepared_metadata(&keyspace, &table, schema, r#where.statements.into_iter())?;

        let result_metadata = ResultMetadata::empty();

        Ok((prepared_metadata, result_metadata))
    }

    fn create_keyspace(&mut self, create: CreateKeyspaceQuery) -> Result<Plan, Error> {
        // todo parse replication literal

        Ok(Plan::AlterSchema(AlterSchema::Keyspace {
            name: create.keyspace,
            ignore_existence: create.ignore_existence,
            replication: Strategy::LocalStrategy,
        }))
    }

    fn create_table(&mut self, create: CreateTableQuery) -> Result<Plan, Error> {
        let CreateTableQuery {
            keyspace,
            table,
            ignore_existence,
            columns,
            partition_keys,
            clustering_keys,
            options,
            statics,
        } = create;
        let keyspace = keyspace
            .or(self.use_keyspace.clone())
            .ok_or(Error::new(DbError::Invalid, "Keyspace is not specified"))?;

        Ok(Plan::AlterSchema(AlterSchema::Table {
            keyspace,
            name: table,
            ignore_existence,
            schema: create_table_schema(columns, partition_keys, clustering_keys, statics, &options),
            options,
        }))
    }

    fn select(&mut self, select: SelectQuery, parameters: QueryParameters) -> Result<Plan, Error> {
        let SelectQuery {
            keyspace,
            table,
            columns,
            r#where,
            limit,
            ..
        } = select;

        let keyspace = keyspace
            .or(self.use_keyspace.clone())
            .ok_or(Error::new(DbError::Invalid, "Keyspace is not specified"))?;

        let schema = self.catalog.get_table(&keyspace, &table).ok_or(Error::new(
            DbError::Invalid,
            "Keyspace or table does nor exist",
        ))?;

        let values = data_reader::DataPayload::read(
            schema,
            r#where.statements.into_iter(),
            parameters.data,
        )?;

        let partition_key = values.get_partition_key()?;
        let clustering_key = values.get_clustering_key_range()?;

        let metadata = metadata(&keyspace, &table, schema, &columns)?;
        let selector = columns_selector(schema, columns)?;
        let clustering_range = match parameters.paging_state {
            Some(PagingState {
                row_mark: Some(ref row_mark),
                ..
            }) => {
                let marker = decode_row_marker(row_mark, &schema.clustering_key_column())?;
                clustering_key.from(marker)
            }
            _ => clustering_key,
        };

        let limit = match (limit, parameters.paging_state) {
            (None, _) => usize::MAX,
            (Some(v), None) => v,
            (Some(_), Some(s)) => s.remaining,
        };

        let node = SelectNode {
            keyspace,
            table,
            partition_key,
            selector,
            clustering_range,
            metadata,
            limit,
            result_page_size: parameters.result_page_size.unwrap_or(100),
        };
        if select.json {
            Ok(Plan::Aggregate {
                source: Box::new(Plan::Select(node)),
                aggregate: Aggregate::Json,
            })
        } else {
            Ok(Plan::Select(node))
        }
    }

    fn prepare_select(
        &mut self,
        select: SelectQuery,
    ) -> Result<(PreparedMetadata, ResultMetadata), Error> {
        let SelectQuery {
            keyspace,
            table,
            columns,
            r#where,
            ..
        } = select;

        let keyspace = keyspace
            .or(self.use_keyspace.clone())
            .ok_or(Error::new(DbError::Invalid, "Keyspace is not specified"))?;

        let schema = self.catalog.get_table(&keyspace, &table).ok_or(Error::new(
            DbError::Invalid,
            "Keyspace or table does nor exist",
        ))?;

        let metadata = metadata(&keyspace, &table, schema, &columns)?;
        let prepared_metadata =
            prepared_metadata(&keyspace, &table, schema, r#where.statements.into_iter())?;

        Ok((prepared_metadata, metadata))
    }

    fn scan(&mut self, select: SelectQuery, parameters: QueryParameters) -> Result<Plan, Error> {
        let SelectQuery {
            keyspace,
            table,
            columns,
            limit,
            ..
        } = select;

        let keyspace = keyspace
            .or(self.use_keyspace.clone())
            .ok_or(Error::new(DbError::Invalid, "Keyspace is not specified"))?;

        let schema = self.catalog.get_table(&keyspace, &table).ok_or(Error::new(
            DbError::Invalid,
            "Keyspace or table does nor exist",
        ))?;

        let metadata = metadata(&keyspace, &table, schema, &columns)?;
        let selector = columns_selector(schema, columns)?;

        let clustering_key_start = match parameters.paging_state {
            Some(PagingState {
                row_mark: Some(ref row_mark),
                ..
            }) => {
                let marker = decode_row_marker(row_mark, &schema.clustering_key_column())?;
                ClusteringKeyValueRange::From(marker)
            }
            _ => ClusteringKeyValueRange::Full,
        };
        let partition_range = match parameters.paging_state {
            Some(PagingState {
                partition_key: Some(ref partition_key),
                ..
            }) => {
                let partition =
                    decode_partition_start(partition_key, &schema.partition_key_column())?;
                (partition..).into()
            }
            _ => (..).into(),
        };

        let limit = match (limit, parameters.paging_state) {
            (None, _) => usize::MAX,
            (Some(v), None) => v,
            (Some(_), Some(s)) => s.remaining,
        };

        let node = ScanNode {
            keyspace,
            table,
            metadata,
            selector,
            partition_range,
            clustering_key_start,
            limit,
            result_page_size: parameters.result_page_size.unwrap_or(500),
        };

        if select.json {
            Ok(Plan::Aggregate {
                source: Box::new(Plan::Scan(node)),
                aggregate: Aggregate::Json,
            })
        } else {
            Ok(Plan::Scan(node))
        }
    }
}

fn metadata(
    keyspace: &str,
    table: &str,
    schema: &TableSchema,
    columns: &SelectExpression,
) -> Result<ResultMetadata, DbError> {
    let global_spec = Some(TableSpec {
        ks_name: keyspace.to_owned(),
        table_name: table.to_owned(),
    });
    let col_specs = match &columns {
        SelectExpression::All => schema
            .columns
            .iter()
            .map(|(name, c)| ColumnSpec::new(name.clone(), c.ty.clone()))
            .collect(),
        SelectExpression::Columns(columns) => columns
            .iter()
            .map(|it| resolve_column_spec(schema, it))
            .collect::<Result<Vec<_>, _>>()?,
    };

    Ok(ResultMetadata {
        global_spec,
        paging_state: None,
        col_specs,
    })
}

#[instrument(level = Level::TRACE, skip(schema), err)]
fn resolve_column_spec(
    schema: &TableSchema,
    selector: &query::ColumnSelector,
) -> Result<ColumnSpec, DbError> {
    let Some(column) = schema.columns.get(&selector.name) else {
        // Unknown column
        return Err(DbError::Invalid);
    };
    let name = selector.alias.as_ref().unwrap_or(&selector.name).clone();
    let ty = selector
        .function
        .map(|it| it.return_type(&column.ty))
        .unwrap_or_else(|| column.ty.clone());

    Ok(ColumnSpec::new(name, ty))
}

#[instrument(level = Level::TRACE, skip(schema, r#where), err)]
fn prepared_metadata(
    keyspace: &str,
    table: &str,
    schema: &TableSchema,
    r#where: impl Iterator<Item = (String, QueryValue)>,
) -> Result<PreparedMetadata, Error> {
    let mut pk_indexes = vec![];
    let mut col_specs = vec![];

    for (seq, (column, value)) in r#where.enumerate() {
        match value {
            QueryValue::Blankslate => {
                if let Some(index) = schema.partition_key.into_iter().position(|p| p == &column) {
                    pk_indexes.push(PartitionKeyIndex {
                        index: seq as _,
                        sequence: index as _,
                    });
                }
            }
            // Patched: a literal is no bind marker (the driver's `WHERE key = 'local'` on
            // system.local was reported with one, and its metadata read failed).
            QueryValue::Literal(_) => continue,
        }

        let Some(column_spec) = schema.columns.get(&column) else {
            return Err(Error::new(
                DbError::Invalid,
                format!("unknown column `{column}`"),
            ));
        };

        col_specs.push(ColumnSpec::new(column, column_spec.ty.clone()));
    }

    Ok(PreparedMetadata {
        pk_indexes,
        global_spec: Some(TableSpec {
            ks_name: keyspace.to_owned(),
            table_name: table.to_owned(),
        }),
        col_specs,
    })
}

fn create_table_schema(
    columns: Vec<(String, PreCqlType)>,
    partition_keys: Vec<String>,
    clustering_keys: Vec<String>,
    statics: Vec<String>,
    options: &[(String, crate::cql::literal::Literal)],
) -> TableSchema {
    // Patched: `CLUSTERING ORDER BY (c DESC)` is kept (the parser maps DESC to `false`).
    let descending = options
        .iter()
        .filter(|(name, _)| name == "clustering order by")
        .flat_map(|(_, order)| match order {
            crate::cql::literal::Literal::Map(m) => m
                .iter()
                .filter(|(_, asc)| matches!(asc, crate::cql::literal::Literal::Bool(false)))
                .map(|(c, _)| c.clone())
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
        .collect();
    let mut columns_res = Vec::new();

    for (column_name, column_type) in columns {
        let kind = if partition_keys.contains(&column_name) {
            ColumnKind::PartitionKey
        } else if clustering_keys.contains(&column_name) {
            ColumnKind::Clustering
        } else if statics.contains(&column_name) {
            ColumnKind::Static
        } else {
            ColumnKind::Regular
        };
        let ty = column::map_pre_type(column_type);

        columns_res.push((column_name, Column { ty, kind }));
    }

    TableSchema {
        columns: columns_res.into_iter().collect(),
        partition_key: PrimaryKey::from_definition(partition_keys),
        clustering_key: PrimaryKey::from_definition(clustering_keys),
        partitioner: None,
        descending,
    }
}

#[instrument(level = Level::TRACE, skip(schema), err)]
fn columns_selector(
    schema: &TableSchema,
    selector: SelectExpression,
) -> Result<ColumnsSelector, DbError> {
    Ok(ColumnsSelector(match selector {
        SelectExpression::All => schema
            .columns
            .keys()
            .map(|name| execution::ColumnSelector {
                name: name.clone(),
                transform: Transform::Identity,
            })
            .collect(),
        SelectExpression::Columns(columns) => columns
            .iter()
            .map(|column| {
                let transform = match column.function {
                    None => Transform::Identity,
                    Some(CqlFunction::ToJson) => Transform::ToJson,
                    Some(_) => return Err(DbError::Invalid),
                };
                Ok(execution::ColumnSelector {
                    name: column.name.clone(),
                    transform,
                })
            })
            .collect::<Result<_, _>>()?,
    }))
}

fn decode_row_marker(data: &[u8], ty: &PrimaryKeyColumn) -> Result<ClusteringKeyValue, Error> {
    Ok(parse::clustering_key(data, ty)?.1)
}

fn decode_partition_start(data: &[u8], ty: &PrimaryKeyColumn) -> Result<PartitionKeyValue, Error> {
    Ok(parse::partition_key(data, ty)?.1)
}
