
    /// Runs a parameterised report query (see [`crate::reports`]): its values are bound to the
    /// placeholders, never written into the SQL. Returns the schema even when no row comes back.
    pub async fn query_bound(
        &self,
        query: &crate::reports::BoundQuery,
    ) -> Result<(Arc<Schema>, Vec<RecordBatch>), QueryError> {
        let mut frame = self.ctx.sql_with_options(&query.sql, read_only()).await?;
        if !query.params.is_empty() {
            frame = frame.with_param_values(query.params.clone())?;
        }
        let schema = Arc::new(frame.schema().as_arrow().clone());
        Ok((schema, frame.collect().await?))
    }
