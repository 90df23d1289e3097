//! Ad assets uploaded to walletctl: images, named by the SHA-256 of their
//! bytes, stored with the campaigns (GridFS in MongoDB, a table in the
//! embedded store) and served by the display service under that name, so
//! a URL's content never changes and CDNs may keep it forever.

use sha2::{Digest, Sha256};

use crate::domain::ParseError;

/// The largest asset accepted: 1 MiB.
pub const MAX_ASSET_BYTES: usize = 1024 * 1024;

/// The image types accepted, recognised by their bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageType {
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// GIF.
    Gif,
    /// WebP.
    Webp,
}

impl ImageType {
    /// The type the bytes are, if an accepted one. (SVG is refused: it can
    /// carry scripts.)
    pub fn sniff(b: &[u8]) -> Option<ImageType> {
        if b.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(ImageType::Png)
        } else if b.starts_with(&[0xff, 0xd8, 0xff]) {
            Some(ImageType::Jpeg)
        } else if b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a") {
            Some(ImageType::Gif)
        } else if b.len() >= 12 && &b[..4] == b"RIFF" && &b[8..12] == b"WEBP" {
            Some(ImageType::Webp)
        } else {
            None
        }
    }

    /// Its media type.
    pub fn mime(self) -> &'static str {
        match self {
            ImageType::Png => "image/png",
            ImageType::Jpeg => "image/jpeg",
            ImageType::Gif => "image/gif",
            ImageType::Webp => "image/webp",
        }
    }
}

/// A stored asset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// The SHA-256 of the bytes, 64 lowercase hex digits.
    pub id: String,
    /// Its media type.
    pub content_type: String,
    /// The image.
    pub bytes: Vec<u8>,
}

impl Asset {
    /// An upload, checked: at most [`MAX_ASSET_BYTES`], an accepted image
    /// type, and the type it was declared as (if declared).
    pub fn parse(declared: Option<&str>, bytes: Vec<u8>) -> Result<Asset, ParseError> {
        if bytes.is_empty() {
            return Err(ParseError::new("body", "must be an image, not empty"));
        }
        if bytes.len() > MAX_ASSET_BYTES {
            return Err(ParseError::new(
                "body",
                format!("must be at most {MAX_ASSET_BYTES} bytes"),
            ));
        }
        let kind = ImageType::sniff(&bytes)
            .ok_or_else(|| ParseError::new("body", "must be a PNG, JPEG, GIF or WebP image"))?;
        if let Some(d) = declared {
            let d = d.split(';').next().unwrap_or_default().trim();
            if !d.eq_ignore_ascii_case(kind.mime()) && d != "application/octet-stream" {
                return Err(ParseError::new(
                    "content-type",
                    format!("says {d}, but the bytes are {}", kind.mime()),
                ));
            }
        }
        Ok(Asset {
            id: hex::encode(Sha256::digest(&bytes)),
            content_type: kind.mime().to_owned(),
            bytes,
        })
    }

    /// Whether `name` can be an asset id (and so a path segment to look up).
    pub fn valid_id(name: &str) -> bool {
        name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}

/// Why an asset could not be read: the campaign store's error.
pub type AssetError = super::store::CampaignStoreError;

/// Where uploaded assets are read: the ads area's published port for the
/// display service, which is their origin (a CDN fronts it). Every
/// campaign store is one (`CampaignStore: AssetSource`).
#[async_trait::async_trait]
pub trait AssetSource: Send + Sync {
    /// An asset by id.
    async fn get_asset(&self, id: &str) -> Result<Option<Asset>, AssetError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uploads_are_named_by_their_bytes_and_typed_by_them() {
        let png = b"\x89PNG\r\n\x1a\nrest".to_vec();
        let a = Asset::parse(Some("image/png"), png.clone()).unwrap();
        assert_eq!(a.content_type, "image/png");
        assert!(Asset::valid_id(&a.id));
        assert_eq!(Asset::parse(None, png.clone()).unwrap().id, a.id);
        assert_eq!(
            Asset::parse(Some("image/gif"), png).unwrap_err().field,
            "content-type"
        );
        assert!(Asset::parse(None, b"<svg onload=alert(1)>".to_vec()).is_err());
        assert!(Asset::parse(None, [0xff, 0xd8, 0xff].repeat(400_000)).is_err());
    }
}
