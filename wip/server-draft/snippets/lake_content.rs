
    /// What identifies the lake's content now: each canonical table's and each of the named
    /// derived tables' content id (see [`content_id`]; `absent` for a table never written). Two
    /// equal answers mean nothing was committed in between.
    pub async fn content(
        &self,
        derived: &[String],
    ) -> Result<std::collections::BTreeMap<String, String>, LakeError> {
        let mut content = std::collections::BTreeMap::new();
        for table in Table::ALL {
            let id = match self.open_existing(table).await? {
                Some(handle) => content_id(&handle),
                None => "absent".to_owned(),
            };
            content.insert(table.name().to_owned(), id);
        }
        for name in derived {
            let id = match self
                .load(self.derived_url(name)?)
                .await
                .map_err(|source| LakeError::Derived {
                    name: name.clone(),
                    source,
                })? {
                Some(handle) => content_id(&handle),
                None => "absent".to_owned(),
            };
            content.insert(format!("{DERIVED_DIR}/{name}"), id);
        }
        Ok(content)
    }
