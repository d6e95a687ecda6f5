-- Issue 21: an intake a system client sends "for nobody" (a relay of the public
-- page) carries no proof of who the patient is; only a token allowed to link
-- files a matched intake straight into the chart.
ALTER TABLE api_token ADD COLUMN may_link INTEGER NOT NULL DEFAULT 0;
