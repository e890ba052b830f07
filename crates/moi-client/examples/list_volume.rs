//! Lists a folder of a MOI volume, every page of it: the catalog call the worker's `ls`
//! and `--delete` are built on.
//!
//! ```sh
//! MOI_KEY=... MOI_ENDPOINT=https://... cargo run -p moi-client --example list_volume -- VOLUME_ID [FOLDER_ID]
//! ```

use moi_client::secret::Secret;
use moi_client::{Client, ClientOptions, Credentials};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let volume = args
        .next()
        .ok_or("usage: list_volume VOLUME_ID [FOLDER_ID]")?;
    let folder = args.next().unwrap_or_default();
    let endpoint = url::Url::parse(&std::env::var("MOI_ENDPOINT")?)?;
    let key = Credentials::ApiKey(Secret::new(std::env::var("MOI_KEY")?));
    let client = Client::new(&endpoint, key, ClientOptions::default())?;
    for entry in client.list_children(&volume, &folder).await? {
        let kind = if entry.is_folder() { "folder" } else { "file" };
        println!(
            "{kind}\t{}\t{}\t{}",
            entry.size,
            entry.id,
            entry.full_name()
        );
    }
    Ok(())
}
